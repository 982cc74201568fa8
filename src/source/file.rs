use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::PathBuf;

/// An NDJSON input: a file, or `-` for standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

/// Errors of reading an input. `Open` and `Read` are usually the user's (a missing file, a
/// path that is a directory) or the file system's; `Kafka` the broker's (a partition it
/// stopped serving), with the position where reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot open {input}: {cause}")]
    Open { input: String, cause: io::Error },
    #[error("cannot read {input} after line {line}: {cause}")]
    Read {
        input: String,
        line: u64,
        cause: io::Error,
    },
    #[error("reading {topic} partition {partition} at offset {offset}: {detail}")]
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
        detail: String,
    },
}

impl Input {
    pub fn parse(text: &str) -> Self {
        if text == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(text))
        }
    }

    /// The name used in `source` columns: the absolute path, so that re-ingesting the same
    /// file from another directory is recognized.
    pub fn source_name(&self) -> String {
        match self {
            Input::Stdin => "stdin".to_owned(),
            Input::File(path) => std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
        }
    }

    /// Size in bytes, when known in advance (for progress).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        }
    }

    pub fn open(&self) -> Result<ChunkReader, SourceError> {
        self.open_with(MAX_LINE_BYTES)
    }

    /// As [`Input::open`], reading lines of up to `max_line` bytes whole.
    pub fn open_with(&self, max_line: usize) -> Result<ChunkReader, SourceError> {
        let reader: Box<dyn Read + Send> = match self {
            Input::Stdin => Box::new(io::stdin()),
            Input::File(path) => Box::new(File::open(path).map_err(|cause| SourceError::Open {
                input: self.to_string(),
                cause,
            })?),
        };
        let reader = plain_text(reader).map_err(|cause| SourceError::Read {
            input: self.to_string(),
            line: 0,
            cause,
        })?;
        Ok(ChunkReader::new(self.to_string(), reader).with_max_line(max_line))
    }

    /// Fails early, before any work, if a file is missing or unreadable.
    pub fn check_readable(&self) -> Result<(), SourceError> {
        match self {
            Input::Stdin => Ok(()),
            Input::File(path) => File::open(path)
                .map(drop)
                .map_err(|cause| SourceError::Open {
                    input: self.to_string(),
                    cause,
                }),
        }
    }
}

/// An input's bytes as text: a gzip or zstd file decompressed (told by its magic bytes,
/// whatever its name), and a UTF-8 byte order mark at the start skipped.
fn plain_text(reader: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    // Large reads pass a `BufReader` by once its buffer is empty: the plain case copies
    // only the first buffer.
    let mut reader = io::BufReader::with_capacity(64 * 1024, reader);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(GZIP) {
        let decoder = flate2::read::MultiGzDecoder::new(reader);
        Box::new(without_bom(io::BufReader::with_capacity(
            64 * 1024,
            decoder,
        ))?)
    } else if head.starts_with(ZSTD) {
        let decoder = zstd::stream::read::Decoder::with_buffer(reader)?;
        Box::new(without_bom(io::BufReader::with_capacity(
            64 * 1024,
            decoder,
        ))?)
    } else {
        Box::new(without_bom(reader)?)
    })
}

/// `reader` past a UTF-8 byte order mark, if it starts with one.
fn without_bom<R: BufRead>(mut reader: R) -> io::Result<R> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(reader)
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("stdin"),
            Input::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Whole records of one input: lines of a file, numbered from `first_line` (1-based), or
/// messages of a topic partition with their offsets.
#[derive(Debug)]
pub struct Chunk {
    pub first_line: u64,
    pub data: Vec<u8>,
    /// For messages: each one's offset and the end of its bytes in `data` (a message may
    /// itself contain newlines). `None` for lines.
    pub messages: Option<Vec<(u64, usize)>>,
    /// For messages: their keys (a dead letter keeps its message's key).
    pub keys: MessageKeys,
    /// How many records `records()` yields: counted once, as the reader numbers the lines
    /// by it and the workers size their buffers by it.
    count: u64,
    /// Lines longer than [`MAX_LINE_BYTES`], as (line number, length in bytes): the chunk
    /// holds only their first [`KEPT_BYTES`].
    cut: Vec<(u64, u64)>,
}

/// The keys of a chunk's messages, by offset, in one buffer (a key per message would be an
/// allocation per message).
#[derive(Debug, Default)]
pub struct MessageKeys {
    bytes: Vec<u8>,
    /// (offset, end of the key in `bytes`), offsets ascending; keyless messages left out.
    ends: Vec<(u64, usize)>,
}

impl MessageKeys {
    /// Adds the key of the message at `offset`, which follows every offset added before.
    pub fn push(&mut self, offset: u64, key: Option<&[u8]>) {
        if let Some(key) = key {
            self.bytes.extend_from_slice(key);
            self.ends.push((offset, self.bytes.len()));
        }
    }

    /// The key of the message at `offset`, if it had one.
    pub fn get(&self, offset: u64) -> Option<&[u8]> {
        let index = self.ends.binary_search_by_key(&offset, |(o, _)| *o).ok()?;
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i].1);
        self.bytes.get(start..self.ends[index].1)
    }
}

impl Chunk {
    pub fn of_lines(first_line: u64, data: Vec<u8>) -> Self {
        let newlines = memchr::memchr_iter(b'\n', &data).count() as u64;
        let count = if data.ends_with(b"\n") {
            newlines
        } else {
            newlines + 1
        };
        Chunk {
            first_line,
            data,
            messages: None,
            keys: MessageKeys::default(),
            count,
            cut: Vec::new(),
        }
    }

    /// The length of the line at `position` if it was longer than [`MAX_LINE_BYTES`] and
    /// so cut to its first [`KEPT_BYTES`].
    pub fn cut_length(&self, position: u64) -> Option<u64> {
        (self.cut.iter())
            .find(|(line, _)| *line == position)
            .map(|(_, length)| *length)
    }

    /// Messages laid end to end in `data`, each given as (offset, end in `data`).
    pub fn of_messages(data: Vec<u8>, messages: Vec<(u64, usize)>, keys: MessageKeys) -> Self {
        Chunk {
            first_line: messages.first().map_or(0, |(offset, _)| *offset),
            count: messages.len() as u64,
            data,
            messages: Some(messages),
            keys,
            cut: Vec::new(),
        }
    }

    /// The records with their positions (line number or offset); a line's trailing '\r' is
    /// kept out of it.
    pub fn records(&self) -> Records<'_> {
        match &self.messages {
            None => Records::Lines {
                rest: Some(self.data.strip_suffix(b"\n").unwrap_or(&self.data)),
                number: self.first_line,
            },
            Some(messages) => Records::Messages {
                data: &self.data,
                start: 0,
                ends: messages.iter(),
            },
        }
    }

    /// As many as `records()` yields.
    pub fn record_count(&self) -> u64 {
        self.count
    }
}

/// The records of a [`Chunk`] with their positions.
pub enum Records<'a> {
    Lines {
        rest: Option<&'a [u8]>,
        number: u64,
    },
    Messages {
        data: &'a [u8],
        start: usize,
        ends: std::slice::Iter<'a, (u64, usize)>,
    },
}

impl<'a> Iterator for Records<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Records::Lines { rest, number } => {
                let text = (*rest)?;
                let line = match memchr::memchr(b'\n', text) {
                    Some(end) => {
                        *rest = Some(&text[end + 1..]);
                        &text[..end]
                    }
                    None => {
                        *rest = None;
                        text
                    }
                };
                *number += 1;
                Some((*number - 1, line.strip_suffix(b"\r").unwrap_or(line)))
            }
            Records::Messages { data, start, ends } => {
                let (offset, end) = *ends.next()?;
                let message = data.get(*start..end)?;
                *start = end;
                Some((offset, message))
            }
        }
    }
}

/// Reads an input in chunks of about `CHUNK_BYTES`, each cut after a newline, so that lines
/// can be decoded in parallel and still be numbered exactly.
pub struct ChunkReader {
    name: String,
    // Unbuffered: each read asks for up to a whole chunk, straight into the chunk's buffer.
    reader: Box<dyn Read + Send>,
    carry: Vec<u8>,
    next_line: u64,
    done: bool,
    /// Lines longer than this are cut (see [`MAX_LINE_BYTES`]).
    max_line: usize,
}

const CHUNK_BYTES: usize = 1 << 20;

/// The longest line read whole unless configured otherwise (`--max-line-bytes`). A usage
/// record or event is under a KiB; a longer line is a producer's bug, and is read past
/// (never held whole) and kept as its first [`KEPT_BYTES`], for a `line_too_long` dead
/// letter.
pub const MAX_LINE_BYTES: usize = 4 << 20;
/// What a dead letter keeps of a line over [`MAX_LINE_BYTES`].
pub const KEPT_BYTES: usize = 4096;

impl ChunkReader {
    /// Chunks of `reader`'s lines, as they are (not decompressed), named `name` in errors.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Self {
        Self::new(name.to_owned(), reader)
    }

    fn new(name: String, reader: Box<dyn Read + Send>) -> Self {
        ChunkReader {
            name,
            reader,
            carry: Vec::new(),
            next_line: 1,
            done: false,
            max_line: MAX_LINE_BYTES,
        }
    }

    /// Cuts lines longer than `bytes` instead of [`MAX_LINE_BYTES`] (at least a chunk).
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes.max(KEPT_BYTES);
        self
    }

    /// The next chunk of whole lines, or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let mut data = std::mem::take(&mut self.carry);
        let target = data.len() + CHUNK_BYTES;
        data.reserve(CHUNK_BYTES);
        while data.len() < target {
            let before = data.len();
            let read = (&mut self.reader)
                .take((target - before) as u64)
                .read_to_end(&mut data)
                .map_err(|cause| SourceError::Read {
                    input: self.name.clone(),
                    line: self.next_line,
                    cause,
                })?;
            if read == 0 {
                self.done = true;
                break;
            }
        }
        if !self.done {
            match memchr::memrchr(b'\n', &data) {
                Some(cut) => self.carry = data.split_off(cut + 1),
                // A line too long to hold: read past it, keep its start.
                None if data.len() > self.max_line => return self.cut_line(data).map(Some),
                // One line longer than a chunk: keep reading it.
                None => {
                    self.carry = data;
                    return self.next_chunk();
                }
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let chunk = Chunk::of_lines(self.next_line, data);
        self.next_line += chunk.record_count();
        Ok(Some(chunk))
    }

    /// A chunk of the one line that `start` begins (and holds no newline of): its first
    /// [`KEPT_BYTES`], with its whole length noted. What follows its end is carried.
    fn cut_line(&mut self, mut start: Vec<u8>) -> Result<Chunk, SourceError> {
        let mut length = start.len() as u64;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match self.reader.read(&mut buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => read.map_err(|cause| SourceError::Read {
                    input: self.name.clone(),
                    line: self.next_line,
                    cause,
                })?,
            };
            if read == 0 {
                self.done = true;
                break;
            }
            if let Some(end) = memchr::memchr(b'\n', &buffer[..read]) {
                length += end as u64;
                self.carry = buffer[end + 1..read].to_vec();
                break;
            }
            length += read as u64;
        }
        start.truncate(KEPT_BYTES);
        start.push(b'\n');
        let mut chunk = Chunk::of_lines(self.next_line, start);
        chunk.cut.push((self.next_line, length));
        self.next_line += 1;
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<(u64, String)> {
        let mut reader = ChunkReader::new(
            "t".into(),
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
        );
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            out.extend(
                chunk
                    .records()
                    .map(|(n, l)| (n, String::from_utf8(l.to_vec()).unwrap())),
            );
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn lines_match_a_plain_split_and_their_count(text in "[ab\r\n]{0,40}") {
            let chunk = Chunk::of_lines(7, text.clone().into_bytes());
            let body = text.strip_suffix('\n').unwrap_or(&text);
            let expected: Vec<(u64, String)> = body
                .split('\n')
                .enumerate()
                .map(|(i, l)| (7 + i as u64, l.strip_suffix('\r').unwrap_or(l).to_owned()))
                .collect();
            let got: Vec<(u64, String)> = chunk
                .records()
                .map(|(n, l)| (n, String::from_utf8(l.to_vec()).unwrap()))
                .collect();
            proptest::prop_assert_eq!(&got, &expected);
            proptest::prop_assert_eq!(chunk.record_count(), expected.len() as u64);
        }
    }

    #[test]
    fn messages_keep_their_offsets_and_inner_newlines() {
        let data = b"{\"a\":\n1}{}\r\n".to_vec();
        let mut keys = MessageKeys::default();
        keys.push(40, Some(b"k40"));
        keys.push(41, None);
        keys.push(45, Some(b"key45"));
        let chunk = Chunk::of_messages(data, vec![(40, 8), (41, 10), (45, 12)], keys);
        assert_eq!(chunk.keys.get(40), Some(&b"k40"[..]));
        assert_eq!(chunk.keys.get(41), None);
        assert_eq!(chunk.keys.get(45), Some(&b"key45"[..]));
        assert_eq!(chunk.keys.get(44), None);
        let got: Vec<(u64, &[u8])> = chunk.records().collect();
        let want: Vec<(u64, &[u8])> = vec![(40, b"{\"a\":\n1}"), (41, b"{}"), (45, b"\r\n")];
        assert_eq!(got, want);
        assert_eq!(chunk.record_count(), 3);
    }

    #[test]
    fn numbers_lines_and_keeps_blank_ones() {
        assert_eq!(
            lines_of("a\n\nb\r\nc"),
            vec![
                (1, "a".into()),
                (2, "".into()),
                (3, "b".into()),
                (4, "c".into())
            ]
        );
        assert_eq!(lines_of("a\n"), vec![(1, "a".into())]);
        assert!(lines_of("").is_empty());
    }

    #[test]
    fn a_line_too_long_to_hold_is_cut_and_the_next_numbered_on() {
        let long = "y".repeat(MAX_LINE_BYTES + CHUNK_BYTES + 5);
        let text = format!("first\n{long}\nlast\n");
        let mut reader = ChunkReader::new("t".into(), Box::new(std::io::Cursor::new(text)));
        let mut lines = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            for (line, bytes) in chunk.records() {
                lines.push((line, bytes.len(), chunk.cut_length(line)));
            }
        }
        let cut = Some(long.len() as u64);
        assert_eq!(
            lines,
            vec![(1, 5, None), (2, KEPT_BYTES, cut), (3, 4, None)]
        );
    }

    #[test]
    fn lines_longer_than_a_chunk_stay_whole() {
        let long = "x".repeat(CHUNK_BYTES * 2 + 17);
        let text = format!("first\n{long}\nlast\n");
        let lines = lines_of(&text);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].1.len(), long.len());
        assert_eq!(lines[2], (3, "last".into()));
    }
}
