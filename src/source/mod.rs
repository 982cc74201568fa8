//! source: where records come from: files (and stdin), dead letters offered again, and
//! (through [`crate::kafka`]) Kafka topics. A source hands out whole records with their
//! coordinates, so every record can be traced back.

mod file;
mod replay;

pub use file::{
    Chunk, ChunkReader, Input, MessageKeys, Records, SourceError, KEPT_BYTES, MAX_LINE_BYTES,
};
pub use replay::{Letter, Replayed};

/// Records of one or more inputs, a chunk at a time; every chunk comes from one input.
pub trait ChunkSource: Send {
    /// How each input's `source` values begin, by input index: `path:` before a line number,
    /// `topic/partition/` before an offset.
    fn prefixes(&self) -> Vec<String>;

    /// Whether [`ChunkSource::prefixes`] already names every input this source will read (a
    /// Kafka consumer learns its partitions as it goes).
    fn prefixes_are_final(&self) -> bool {
        false
    }

    /// The next chunk and the index of its input, or `None` when the source is done.
    fn next_chunk(&mut self) -> Result<Option<(usize, Chunk)>, SourceError>;

    /// Where a later run should resume: (application id, next position) pairs, recorded in
    /// the same Delta commit as the data read. Files start over (the lake makes that
    /// idempotent), so they have none.
    fn resume_points(&self) -> Vec<(String, i64)> {
        Vec::new()
    }

    /// (input prefix, application id) of every input that resumes from a position recorded
    /// under that id; empty for sources that start over (files).
    fn resume_app_ids(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The Kafka partition each input reads, by input index; empty for other sources.
    fn partitions(&self) -> Vec<i32> {
        Vec::new()
    }
}

/// The files (or stdin) of an ingest, one after the other.
pub struct FileChunks {
    inputs: Vec<Input>,
    current: usize,
    reader: Option<ChunkReader>,
    max_line: usize,
}

impl FileChunks {
    pub fn new(inputs: Vec<Input>) -> Self {
        FileChunks {
            inputs,
            current: 0,
            reader: None,
            max_line: MAX_LINE_BYTES,
        }
    }

    /// Cuts lines longer than `bytes` (see [`MAX_LINE_BYTES`]).
    pub fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }
}

impl ChunkSource for FileChunks {
    fn prefixes(&self) -> Vec<String> {
        self.inputs
            .iter()
            .map(|input| format!("{}:", input.source_name()))
            .collect()
    }

    fn prefixes_are_final(&self) -> bool {
        true
    }

    fn next_chunk(&mut self) -> Result<Option<(usize, Chunk)>, SourceError> {
        while let Some(input) = self.inputs.get(self.current) {
            let reader = match &mut self.reader {
                Some(reader) => reader,
                None => self.reader.insert(input.open_with(self.max_line)?),
            };
            if let Some(chunk) = reader.next_chunk()? {
                return Ok(Some((self.current, chunk)));
            }
            self.reader = None;
            self.current += 1;
        }
        Ok(None)
    }
}
