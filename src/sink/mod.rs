//! sink: attributed slices, quarantined slices, dead letters and accepted events become
//! Arrow record batches in the lake's schemas, ready for the lake writer.

mod dead_letters;
mod directory;
mod partitioned;
mod slices;

pub use crate::tables::sim_events::EventRows;
pub use dead_letters::{DeadLetter, DeadLetterRows, LetterInput};
pub use directory::DirectoryRows;
pub use partitioned::{PartitionedBatches, WorkspaceDay};
pub use slices::{CorrectionMark, QuarantineRows, UsageRows};

/// Rows per record batch handed to the writer: large enough for good Parquet pages, small
/// enough to keep memory flat.
pub const BATCH_ROWS: usize = 64 * 1024;

/// `quarantine` rows gathered before they go to the writer as one row group. Smaller than
/// [`BATCH_ROWS`]: a run quarantines a few percent of its records, so 64 Ki rows held most
/// of them (25 MiB for 1 M records) until the end of the run.
pub const QUARANTINE_BUFFER_ROWS: usize = 16 * 1024;

/// `usage` rows gathered over all Workspaces before each Workspace's rows go to the writer
/// as one row group. Measured on the 1 M benchmark (5 Workspaces): 128 Ki rows was faster
/// than 64 Ki (more row groups) and than 256 Ki (more memory touched: 600 MiB against 550).
pub const USAGE_BUFFER_ROWS: usize = 128 * 1024;
