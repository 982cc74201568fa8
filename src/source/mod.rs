//! source: where records come from. Files (and stdin) now; Kafka later. A source hands out
//! chunks of whole lines with their coordinates, so every record can be traced back.

mod file;

pub use file::{Chunk, ChunkReader, Input, SourceError};
