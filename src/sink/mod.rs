//! sink: attributed slices, quarantined slices, dead letters and accepted events become
//! Arrow record batches in the lake's schemas, ready for the lake writer.

mod dead_letters;
mod events;
mod slices;

pub use dead_letters::{DeadLetter, DeadLetterRows};
pub use events::EventRows;
pub use slices::{QuarantineRows, UsageRows};

/// Rows per record batch handed to the writer: large enough for good Parquet pages, small
/// enough to keep memory flat.
pub const BATCH_ROWS: usize = 64 * 1024;
