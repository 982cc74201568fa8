//! `usage`: attributed slices, one row per slice of a usage record, with its Workspace.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, RecordBatch};

use super::slices::{CorrectionMark, SliceColumns};
use crate::attribute::Slice;
use crate::domain::{UsageRecord, UtcMillis, WorkspaceId};

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::USAGE as SCHEMA;

/// Rows of the `usage` table.
pub struct UsageRows {
    workspace_id: Int64Builder,
    columns: SliceColumns,
}

impl UsageRows {
    pub fn with_capacity(ingested_at: UtcMillis, rows: usize) -> Self {
        UsageRows {
            workspace_id: Int64Builder::with_capacity(rows),
            columns: SliceColumns::with_capacity(ingested_at, rows),
        }
    }

    pub fn append(
        &mut self,
        workspace: WorkspaceId,
        record: &UsageRecord,
        slice: &Slice,
        source: &str,
    ) {
        self.workspace_id.append_value(workspace.get());
        self.columns.append(record, slice, source);
    }

    /// As `append`, for a row that corrects earlier ones.
    pub fn append_correction(
        &mut self,
        workspace: WorkspaceId,
        record: &UsageRecord,
        slice: &Slice,
        source: &str,
        mark: &CorrectionMark,
    ) {
        self.workspace_id.append_value(workspace.get());
        self.columns
            .append_marked(record, slice, source, Some(mark));
    }

    pub fn len(&self) -> usize {
        self.columns.len
    }

    pub fn is_empty(&self) -> bool {
        self.columns.len == 0
    }

    pub fn finish(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.workspace_id.finish())];
        arrays.extend(self.columns.finish());
        RecordBatch::try_new(SCHEMA.clone(), arrays)
            .unwrap_or_else(|e| unreachable!("usage builders follow the usage schema: {e}"))
    }
}
