use arrow::array::RecordBatch;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use indexmap::IndexMap;
use deltalake::{DeltaTable, DeltaTableError};

use super::{LakeError, LakeTable};

/// Files roll over at this size, so a big ingest makes a few large files per partition,
/// not one per batch.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
const ROW_GROUP_ROWS: usize = 256 * 1024;
const UNIQUE_COLUMNS: &[&str] = &[
    "record_id",
    "start_time",
    "end_time",
    "volume_rx",
    "volume_tx",
    "volume_total",
    "cost",
    "imsi",
    "source",
    "payload",
    "event_id",
    "event_time",
    "seq",
];

/// The value of one partition column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionValue {
    Long(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

impl PartitionValue {
    fn to_scalar(self) -> Scalar {
        match self {
            PartitionValue::Long(v) => Scalar::Long(v),
            PartitionValue::Date(days) => Scalar::Date(days),
        }
    }
}

/// Streams record batches into one table and commits them in one Delta transaction.
pub struct TableAppender {
    table: LakeTable,
    delta: DeltaTable,
    writer: RecordBatchWriter,
    rows: usize,
}

impl TableAppender {
    pub(super) fn new(table: LakeTable, delta: DeltaTable) -> Result<Self, DeltaTableError> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
        // Nearly every value of these columns is distinct: building a dictionary for them
        // only costs time before the writer falls back to plain encoding.
        for column in UNIQUE_COLUMNS {
            props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        let props = props.build();
        let writer = RecordBatchWriter::for_table(&delta)?
            .with_writer_properties(props)
            .with_target_file_size(TARGET_FILE_BYTES);
        Ok(TableAppender {
            table,
            delta,
            writer,
            rows: 0,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows();
        self.writer.write(batch).await.map_err(|e| self.error(e))
    }

    /// Writes rows that all belong to one partition, given as (column, value) pairs in the
    /// table's partition column order. Unlike `write`, nothing is sorted or copied to split it.
    pub async fn write_partition(
        &mut self,
        batch: RecordBatch,
        partition: &[(&str, PartitionValue)],
    ) -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let values: IndexMap<String, Scalar> = partition
            .iter()
            .map(|(column, value)| (column.to_string(), value.to_scalar()))
            .collect();
        self.rows += batch.num_rows();
        self.writer
            .write_partition(batch, &values, WriteMode::Default)
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    /// Commits what was written, recording `txns` (application ids and versions) in the same
    /// Delta transaction. Returns the new table version, or `None` if nothing was written.
    pub async fn commit(mut self, txns: Vec<Transaction>) -> Result<Option<i64>, LakeError> {
        if self.rows == 0 && txns.is_empty() {
            return Ok(None);
        }
        let adds: Vec<Action> = self
            .writer
            .flush()
            .await
            .map_err(|e| self.error(e))?
            .into_iter()
            .map(Action::Add)
            .collect();
        let partition_by = Some(
            self.table
                .partition_columns()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
        )
        .filter(|cols| !cols.is_empty());
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by,
            predicate: None,
        };
        let snapshot = self.delta.snapshot().map_err(|e| self.error(e))?;
        let finalized =
            CommitBuilder::from(CommitProperties::default().with_application_transactions(txns))
                .with_actions(adds)
                .build(Some(snapshot), self.delta.log_store(), operation)
                .await
                .map_err(|e| self.error(e))?;
        Ok(Some(finalized.version() as i64))
    }

    fn error(&self, source: DeltaTableError) -> LakeError {
        LakeError::Delta {
            table: self.table.name(),
            url: self.delta.table_url().to_string(),
            source: Box::new(source),
        }
    }
}
