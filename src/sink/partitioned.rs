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

/// Pieces of `usage` batches gathered by partition, so that the lake writer gets one batch
/// per partition (the pieces joined) and never has to sort and copy rows to split a batch.
#[derive(Default)]
pub struct PartitionedBatches {
    partitions: AHashMap<UsagePartition, Vec<RecordBatch>>,
    rows: usize,
}

impl PartitionedBatches {
    /// Adds rows that all belong to `partition`.
    pub fn push(&mut self, partition: UsagePartition, rows: RecordBatch) {
        if rows.num_rows() == 0 {
            return;
        }
        self.rows += rows.num_rows();
        self.partitions.entry(partition).or_default().push(rows);
    }

    /// Rows held over all partitions.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Every partition's pieces, in partition order, leaving this empty.
    pub fn drain(&mut self) -> Vec<(UsagePartition, Vec<RecordBatch>)> {
        self.rows = 0;
        let mut all: Vec<_> = self.partitions.drain().collect();
        all.sort_unstable_by_key(|(partition, _)| *partition);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    #[test]
    fn gathers_pieces_by_partition_in_arrival_order() {
        let p = |w, d| UsagePartition {
            workspace: WorkspaceId::new(w).unwrap(),
            usage_date: d,
        };
        let mut batches = PartitionedBatches::default();
        batches.push(p(2, 1), rows(&[1, 2]));
        batches.push(p(1, 1), rows(&[3]));
        batches.push(p(2, 1), rows(&[4]));
        batches.push(p(1, 2), rows(&[]));
        assert_eq!(batches.len(), 4);
        let drained = batches.drain();
        assert!(batches.is_empty());
        let shape: Vec<_> = drained
            .iter()
            .map(|(k, pieces)| {
                (
                    *k,
                    pieces.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(shape, vec![(p(1, 1), vec![1]), (p(2, 1), vec![2, 1])]);
    }
}
