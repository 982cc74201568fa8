//! The usage rows of a pass gathered per Workspace and day, so that each `usage` row group
//! holds one Workspace's rows in day and ICCID order.

use std::ops::Range;
use std::sync::Arc;

use ahash::AHashMap;
use arrow::array::{AsArray, RecordBatch};

use crate::domain::WorkspaceId;

/// The rows of one Workspace on one day: `usage` row groups hold their rows in Workspace,
/// day and ICCID order, so that statistics skip everything but the asked Workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceDay {
    pub workspace: WorkspaceId,
    /// Days since 1970-01-01 (UTC) of the slices' start.
    pub usage_date: i32,
}

/// `usage` rows gathered by Workspace and day: the chunks' batches as they came, and for
/// each Workspace day which of their rows it has, so that the lake writer picks a row group
/// out of them in Workspace, day and ICCID order. (Slicing every chunk's batch into a piece
/// per Workspace cost an array per column per piece: a quarter of the gathered rows' memory.)
#[derive(Default)]
pub struct PartitionedBatches {
    batches: Vec<RecordBatch>,
    /// By Workspace day: (index into `batches`, row).
    days: AHashMap<WorkspaceDay, Vec<(usize, usize)>>,
    rows: usize,
}

/// What [`PartitionedBatches::drain`] gives: the batches, and the (batch, row) pairs of their
/// rows by Workspace, then day, then ICCID (then arrival).
pub type Gathered = (Arc<[RecordBatch]>, Vec<(usize, usize)>);

impl PartitionedBatches {
    /// Adds a batch whose rows [`PartitionedBatches::push`] then assigns; returns its index.
    pub fn add_batch(&mut self, batch: RecordBatch) -> usize {
        self.batches.push(batch);
        self.batches.len() - 1
    }

    /// Adds `rows` of the batch at `batch` (an index [`PartitionedBatches::add_batch`]
    /// returned) to `day`.
    pub fn push(&mut self, day: WorkspaceDay, batch: usize, rows: Range<usize>) {
        if rows.is_empty() {
            return;
        }
        self.rows += rows.len();
        self.days
            .entry(day)
            .or_default()
            .extend(rows.map(|row| (batch, row)));
    }

    /// Rows held over all Workspaces.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Everything gathered, leaving this empty. `iccid` is the batches' ICCID column (a
    /// string column; rows of a day stay in arrival order if it is not one).
    pub fn drain(&mut self, iccid: usize) -> Gathered {
        let mut rows = Vec::with_capacity(self.rows);
        self.rows = 0;
        let batches: Arc<[RecordBatch]> = std::mem::take(&mut self.batches).into();
        let iccids: Option<Vec<_>> = batches
            .iter()
            .map(|b| {
                b.columns()
                    .get(iccid)
                    .and_then(|c| c.as_string_opt::<i32>())
            })
            .collect();
        let mut days: Vec<_> = self.days.drain().collect();
        days.sort_unstable_by_key(|(day, _)| *day);
        for (_, mut held) in days {
            if let Some(iccids) = &iccids {
                // Stable: a SIM's rows of the day stay in arrival order.
                held.sort_by_cached_key(|&(batch, row)| order_key(iccids[batch].value(row)));
            }
            rows.extend(held);
        }
        (batches, rows)
    }
}

/// Orders strings of up to 24 bytes (ICCIDs have at most 22) as their bytes do, without a
/// byte-wise comparison per step of the sort: the bytes zero-padded and read as numbers.
fn order_key(text: &str) -> (u128, u64) {
    let bytes = text.as_bytes();
    let mut head = [0u8; 16];
    let mut tail = [0u8; 8];
    let split = bytes.len().min(16);
    head[..split].copy_from_slice(&bytes[..split]);
    let rest = &bytes[split..bytes.len().min(24)];
    tail[..rest.len()].copy_from_slice(rest);
    (u128::from_be_bytes(head), u64::from_be_bytes(tail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn order_keys_order_digit_strings_as_strings(a in "[0-9]{0,24}", b in "[0-9]{0,24}") {
            proptest::prop_assert_eq!(order_key(&a).cmp(&order_key(&b)), a.cmp(&b));
        }
    }

    #[test]
    fn gathers_rows_by_workspace_day_and_iccid() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "iccid",
            DataType::Utf8,
            false,
        )]));
        let batch = |values: &[&str]| {
            let column = arrow::array::StringArray::from(values.to_vec());
            RecordBatch::try_new(schema.clone(), vec![Arc::new(column)]).unwrap()
        };
        let day = |w, d| WorkspaceDay {
            workspace: WorkspaceId::new(w).unwrap(),
            usage_date: d,
        };
        let mut batches = PartitionedBatches::default();
        let first = batches.add_batch(batch(&["b", "a", "c"]));
        batches.push(day(7, 1), first, 0..3);
        let second = batches.add_batch(batch(&["a", "b"]));
        batches.push(day(7, 1), second, 0..1);
        batches.push(day(3, 2), second, 1..2);
        let (_, rows) = batches.drain(0);
        // Workspace 3 first; then 7's day: a (arrived first), a, b, c.
        assert_eq!(rows, vec![(1, 1), (0, 1), (1, 0), (0, 0), (0, 2)]);
    }

    #[test]
    fn gathers_rows_by_workspace_day_by_day_in_arrival_order() {
        let p = |w, d| WorkspaceDay {
            workspace: WorkspaceId::new(w).unwrap(),
            usage_date: d,
        };
        let mut batches = PartitionedBatches::default();
        let first = batches.add_batch(rows(&[1, 2, 3]));
        batches.push(p(2, 1), first, 0..2);
        batches.push(p(1, 2), first, 2..3);
        let second = batches.add_batch(rows(&[4, 5]));
        batches.push(p(2, 1), second, 0..1);
        batches.push(p(1, 1), second, 1..2);
        batches.push(p(3, 1), second, 2..2);
        assert_eq!(batches.len(), 5);
        // No string column: the ICCID order is skipped.
        let (held, rows) = batches.drain(0);
        assert_eq!(batches.len(), 0);
        assert_eq!(held.len(), 2);
        // Workspace 1's day 1 arrived after its day 2, and comes first; nothing for 3.
        assert_eq!(rows, vec![(1, 1), (0, 2), (0, 0), (0, 1), (1, 0)]);
        let (held, rows) = batches.drain(0);
        assert!(held.is_empty() && rows.is_empty());
    }
}
