use std::ops::Range;
use std::sync::Arc;

use ahash::AHashMap;
use arrow::array::RecordBatch;

use crate::domain::WorkspaceId;

/// One partition of the `usage` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UsagePartition {
    pub workspace: WorkspaceId,
    /// Days since 1970-01-01 (UTC) of the slices' start.
    pub usage_date: i32,
}

/// `usage` rows gathered by partition: the chunks' batches as they came, and for each
/// partition which of their rows it has, so that the lake writer picks one batch per
/// partition out of them. (Slicing every chunk's batch into a piece per partition cost
/// an array per column per piece: a quarter of the gathered rows' memory.)
#[derive(Default)]
pub struct PartitionedBatches {
    batches: Vec<RecordBatch>,
    /// By partition: (index into `batches`, row).
    partitions: AHashMap<UsagePartition, Vec<(usize, usize)>>,
    rows: usize,
}

/// What [`PartitionedBatches::drain`] gives: the batches, and by partition, in partition
/// order, the (batch, row) pairs of its rows, in arrival order.
pub type Gathered = (
    Arc<[RecordBatch]>,
    Vec<(UsagePartition, Vec<(usize, usize)>)>,
);

impl PartitionedBatches {
    /// Adds a batch whose rows [`PartitionedBatches::push`] then assigns; returns its index.
    pub fn add_batch(&mut self, batch: RecordBatch) -> usize {
        self.batches.push(batch);
        self.batches.len() - 1
    }

    /// Adds `rows` of the batch at `batch` (an index [`PartitionedBatches::add_batch`]
    /// returned) to `partition`.
    pub fn push(&mut self, partition: UsagePartition, batch: usize, rows: Range<usize>) {
        if rows.is_empty() {
            return;
        }
        self.rows += rows.len();
        self.partitions
            .entry(partition)
            .or_default()
            .extend(rows.map(|row| (batch, row)));
    }

    /// Rows held over all partitions.
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
        let mut partitions: Vec<_> = self.partitions.drain().collect();
        partitions.sort_unstable_by_key(|(partition, _)| *partition);
        (batches, partitions)
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
    fn gathers_rows_by_partition_in_arrival_order() {
        let p = |w, d| UsagePartition {
            workspace: WorkspaceId::new(w).unwrap(),
            usage_date: d,
        };
        let mut batches = PartitionedBatches::default();
        let first = batches.add_batch(rows(&[1, 2, 3]));
        batches.push(p(2, 1), first, 0..2);
        batches.push(p(1, 1), first, 2..3);
        let second = batches.add_batch(rows(&[4, 5]));
        batches.push(p(2, 1), second, 0..1);
        batches.push(p(1, 2), second, 1..1);
        assert_eq!(batches.len(), 4);
        let (held, partitions) = batches.drain();
        assert!(batches.is_empty());
        assert_eq!(held.len(), 2);
        assert_eq!(
            partitions,
            vec![
                (p(1, 1), vec![(0, 2)]),
                (p(2, 1), vec![(0, 0), (0, 1), (1, 0)])
            ]
        );
        let (held, partitions) = batches.drain();
        assert!(held.is_empty() && partitions.is_empty());
    }
}
