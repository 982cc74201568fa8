//! source: where records come from: files (and stdin), and Kafka topics. A source hands
//! out whole records with their coordinates, so every record can be traced back.

mod file;
pub mod kafka;

pub use file::{Chunk, ChunkReader, Input, SourceError};
