//! Dead letters read back from the lake as a source (`simtally dead-letters replay`): each
//! payload is offered again under its original coordinates, so a record that a fixed
//! simtally now accepts carries its first `source`, and one that fails again is recognized
//! as the dead letter already in the lake instead of being written twice.

use super::{Chunk, ChunkSource, MessageKeys, SourceError};

/// One group's payloads laid end to end, each one's (position, end), and their keys.
type MessagesOf = (Vec<u8>, Vec<(u64, usize)>, MessageKeys);

/// A dead letter to offer again: its source, its message key (if it had one), its payload.
pub type Letter = (String, Option<Vec<u8>>, Vec<u8>);

/// Payloads grouped by the part of their `source` before the trailing position
/// (`path:` + line, `topic/partition/` + offset).
pub struct Replayed {
    prefixes: Vec<String>,
    chunks: std::vec::IntoIter<(usize, Chunk)>,
}

impl Replayed {
    /// From letters in any order; a source without a trailing position is replayed under
    /// `source:` with position 0. Each group's letters are offered in position order.
    pub fn new(mut letters: Vec<Letter>) -> Self {
        let mut prefixes: Vec<String> = Vec::new();
        let mut groups: Vec<MessagesOf> = Vec::new();
        letters.sort_by_cached_key(|(source, _, _)| split_position(source));
        for (source, key, payload) in letters {
            let (prefix, position) = split_position(&source);
            let index = match prefixes.iter().position(|p| *p == prefix) {
                Some(index) => index,
                None => {
                    prefixes.push(prefix);
                    groups.push((Vec::new(), Vec::new(), MessageKeys::default()));
                    prefixes.len() - 1
                }
            };
            let (data, ends, keys) = &mut groups[index];
            data.extend_from_slice(&payload);
            ends.push((position, data.len()));
            keys.push(position, key.as_deref());
        }
        let chunks: Vec<(usize, Chunk)> = groups
            .into_iter()
            .enumerate()
            .map(|(index, (data, ends, keys))| (index, Chunk::of_messages(data, ends, keys)))
            .collect();
        Replayed {
            prefixes,
            chunks: chunks.into_iter(),
        }
    }
}

/// `path:12` -> (`path:`, 12); `topic/3/40` -> (`topic/3/`, 40).
fn split_position(source: &str) -> (String, u64) {
    let digits = source.len() - source.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, number) = source.split_at(source.len() - digits);
    match number.parse() {
        Ok(position) if !prefix.is_empty() => (prefix.to_owned(), position),
        _ => (format!("{source}:"), 0),
    }
}

impl ChunkSource for Replayed {
    fn prefixes(&self) -> Vec<String> {
        self.prefixes.clone()
    }

    fn prefixes_are_final(&self) -> bool {
        true
    }

    fn next_chunk(&mut self) -> Result<Option<(usize, Chunk)>, SourceError> {
        Ok(self.chunks.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_split_off_and_put_back() {
        assert_eq!(
            split_position("/data/u.ndjson:12"),
            ("/data/u.ndjson:".into(), 12)
        );
        assert_eq!(
            split_position("sim-usage/3/40"),
            ("sim-usage/3/".into(), 40)
        );
        assert_eq!(split_position("stdin"), ("stdin:".into(), 0));
        let mut source = Replayed::new(vec![
            ("a:9".into(), None, b"z".to_vec()),
            ("t/0/7".into(), Some(b"k".to_vec()), b"yy".to_vec()),
            ("a:1".into(), None, b"x".to_vec()),
        ]);
        let prefixes = source.prefixes();
        let mut replayed = Vec::new();
        while let Some((input, chunk)) = source.next_chunk().unwrap() {
            for (position, payload) in chunk.records() {
                let key = chunk.keys.get(position).map(<[u8]>::to_vec);
                replayed.push((
                    format!("{}{position}", prefixes[input]),
                    key,
                    payload.to_vec(),
                ));
            }
        }
        assert_eq!(
            replayed,
            vec![
                ("a:1".to_string(), None, b"x".to_vec()),
                ("a:9".to_string(), None, b"z".to_vec()),
                ("t/0/7".to_string(), Some(b"k".to_vec()), b"yy".to_vec()),
            ]
        );
    }
}
