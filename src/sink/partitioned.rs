use std::ops::Range;
use std::sync::Arc;

use ahash::AHashMap;
use arrow::array::RecordBatch;

use crate::domain::WorkspaceId;

/// The rows of one Workspace on one day: a `usage` file holds one Workspace (its partition),
/// and each of its row groups holds its rows day by day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspaceDay {
    pub workspace: WorkspaceId,
    /// Days since 1970-01-01 (UTC) of the slices' start.
    pub usage_date: i32,
}

/// `usage` rows gathered by Workspace and day: the chunks' batches as they came, and for
/// each Workspace day which of their rows it has, so that the lake writer picks one row group
/// per Workspace out of them. (Slicing every chunk's batch into a piece per partition cost
/// an array per column per piece: a quarter of the gathered rows' memory.)
#[derive(Default)]
pub struct PartitionedBatches {
    batches: Vec<RecordBatch>,
    /// By Workspace day: (index into `batches`, row).
    days: AHashMap<WorkspaceDay, Vec<(usize, usize)>>,
    rows: usize,
}

/// What [`PartitionedBatches::drain`] gives: the batches, and by Workspace, in Workspace
/// order, the (batch, row) pairs of its rows, by day and then in arrival order.
pub type Gathered = (Arc<[RecordBatch]>, Vec<(WorkspaceId, Vec<(usize, usize)>)>);

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

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Everything gathered, leaving this empty.
    pub fn drain(&mut self) -> Gathered {
        self.rows = 0;
        let batches: Arc<[RecordBatch]> = std::mem::take(&mut self.batches).into();
        let mut days: Vec<_> = self.days.drain().collect();
        days.sort_unstable_by_key(|(day, _)| *day);
        let mut workspaces: Vec<(WorkspaceId, Vec<(usize, usize)>)> = Vec::new();
        for (day, rows) in days {
            match workspaces.last_mut() {
                Some((workspace, held)) if *workspace == day.workspace => held.extend(rows),
                _ => workspaces.push((day.workspace, rows)),
            }
        }
        (batches, workspaces)
    }
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
        let (held, workspaces) = batches.drain();
        assert!(batches.is_empty());
        assert_eq!(held.len(), 2);
        let w = |w| WorkspaceId::new(w).unwrap();
        // Workspace 1's day 1 arrived after its day 2, and comes first; nothing for 3.
        assert_eq!(
            workspaces,
            vec![
                (w(1), vec![(1, 1), (0, 2)]),
                (w(2), vec![(0, 0), (0, 1), (1, 0)])
            ]
        );
        let (held, workspaces) = batches.drain();
        assert!(held.is_empty() && workspaces.is_empty());
    }
}
