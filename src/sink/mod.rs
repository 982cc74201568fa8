//! sink: attributed slices, quarantined slices, dead letters and accepted events become
//! Arrow record batches in the lake's schemas, ready for the lake writer.

mod dead_letters;
mod directory;
mod events;
mod partitioned;
mod slices;

pub use dead_letters::{DeadLetter, DeadLetterRows};
pub use directory::DirectoryRows;
pub use events::EventRows;
pub use partitioned::{PartitionedBatches, UsagePartition};
pub use slices::{CorrectionMark, QuarantineRows, UsageRows};

/// Rows per record batch handed to the writer: large enough for good Parquet pages, small
/// enough to keep memory flat.
pub const BATCH_ROWS: usize = 64 * 1024;

/// `quarantine` rows gathered before they go to the writer as one row group. Smaller than
/// [`BATCH_ROWS`]: a run quarantines a few percent of its records, so 64 Ki rows held most
/// of them (25 MiB for 1 M records) until the end of the run.
pub const QUARANTINE_BUFFER_ROWS: usize = 16 * 1024;

/// `usage` rows gathered over all partitions before each partition's rows go to the writer
/// as one batch: with a few hundred partitions, that keeps the batches from getting tiny.
pub const USAGE_BUFFER_ROWS: usize = 256 * 1024;
