//! `quarantine`: slices without an owner, with the reason.

use std::sync::Arc;

use arrow::array::{RecordBatch, StringBuilder};

use super::slices::{CorrectionMark, SliceColumns};
use crate::attribute::{QuarantineReason, Slice};
use crate::domain::{UsageRecord, UtcMillis};

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::QUARANTINE as SCHEMA;

/// Rows of the `quarantine` table.
pub struct QuarantineRows {
    columns: SliceColumns,
    reason: StringBuilder,
}

impl QuarantineRows {
    pub fn with_capacity(ingested_at: UtcMillis, rows: usize) -> Self {
        QuarantineRows {
            columns: SliceColumns::with_capacity(ingested_at, rows),
            reason: StringBuilder::with_capacity(rows, rows * 11),
        }
    }

    pub fn append(
        &mut self,
        reason: QuarantineReason,
        record: &UsageRecord,
        slice: &Slice,
        source: &str,
    ) {
        self.columns.append(record, slice, source);
        self.reason.append_value(reason.as_str());
    }

    /// As `append`, for a row that corrects earlier ones.
    pub fn append_correction(
        &mut self,
        reason: QuarantineReason,
        record: &UsageRecord,
        slice: &Slice,
        source: &str,
        mark: &CorrectionMark,
    ) {
        self.columns
            .append_marked(record, slice, source, Some(mark));
        self.reason.append_value(reason.as_str());
    }

    pub fn len(&self) -> usize {
        self.columns.len
    }

    pub fn is_empty(&self) -> bool {
        self.columns.len == 0
    }

    pub fn finish(&mut self) -> RecordBatch {
        let mut arrays = self.columns.finish();
        arrays.push(Arc::new(self.reason.finish()));
        RecordBatch::try_new(SCHEMA.clone(), arrays)
            .unwrap_or_else(|e| unreachable!("quarantine builders follow the schema: {e}"))
    }
}
