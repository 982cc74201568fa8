use arrow::array::RecordBatch;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use deltalake::{DeltaTable, DeltaTableError};
use indexmap::IndexMap;

use super::{LakeError, LakeTable};

/// Files roll over at this size, so a big ingest makes a few large files per partition,
/// not one per batch.
const TARGET_FILE_BYTES: u64 = 128 * 1024 * 1024;
const ROW_GROUP_ROWS: usize = 256 * 1024;
const PAGE_BYTES: usize = 128 * 1024;
/// The writer keeps every open file's current row group in memory, and a partitioned table
/// has hundreds of files open at once; closing them all every this many rows keeps memory
/// flat however long the input is (at the cost of one more file per partition each time).
const FLUSH_ROWS: usize = 1024 * 1024;
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
    rows_since_flush: usize,
    flush_rows: usize,
    /// Files already closed by a flush, committed together with the rest.
    closed: Vec<Add>,
}

impl TableAppender {
    pub(super) fn new(table: LakeTable, delta: DeltaTable) -> Result<Self, DeltaTableError> {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_size_limit(PAGE_BYTES);
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
            rows_since_flush: 0,
            flush_rows: FLUSH_ROWS,
            closed: Vec::new(),
        })
    }

    /// Closes the open files every `rows` rows instead of every [`FLUSH_ROWS`].
    pub fn flush_every(mut self, rows: usize) -> Self {
        self.flush_rows = rows;
        self
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), LakeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let rows = batch.num_rows();
        self.writer.write(batch).await.map_err(|e| self.error(e))?;
        self.wrote(rows).await
    }

    /// Counts written rows and closes the open files when enough have gathered.
    async fn wrote(&mut self, rows: usize) -> Result<(), LakeError> {
        self.rows += rows;
        self.rows_since_flush += rows;
        if self.rows_since_flush >= self.flush_rows {
            self.rows_since_flush = 0;
            let adds = self.writer.flush().await.map_err(|e| self.error(e))?;
            self.closed.extend(adds);
        }
        Ok(())
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
        let rows = batch.num_rows();
        self.writer
            .write_partition(batch, &values, WriteMode::Default)
            .await
            .map_err(|e| self.error(e))?;
        self.wrote(rows).await
    }

    /// Commits what was written, recording `txns` (application ids and versions) in the same
    /// Delta transaction. Returns the new table version, or `None` if nothing was written.
    pub async fn commit(mut self, txns: Vec<Transaction>) -> Result<Option<i64>, LakeError> {
        if self.rows == 0 && txns.is_empty() {
            return Ok(None);
        }
        let last = self.writer.flush().await.map_err(|e| self.error(e))?;
        let adds: Vec<Action> = std::mem::take(&mut self.closed)
            .into_iter()
            .chain(last)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Reason, Rejection};
    use crate::domain::UtcMillis;
    use crate::lake::{Lake, LakeLocation};
    use crate::sink::{DeadLetter, DeadLetterRows};

    fn letters(from: usize, count: usize) -> RecordBatch {
        let mut rows = DeadLetterRows::new(UtcMillis::from_millis(0));
        for n in from..from + count {
            rows.append(&DeadLetter {
                source: format!("t:{n}"),
                rejection: Rejection::new(Reason::NotJson, "x".into()),
                payload: vec![b'x'],
            });
        }
        rows.finish()
    }

    #[tokio::test]
    async fn files_closed_early_are_committed_with_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(LakeLocation::parse(dir.path().to_str().unwrap()).unwrap());
        let mut appender = lake
            .appender(LakeTable::DeadLetters)
            .await
            .unwrap()
            .flush_every(3);
        for i in 0..4 {
            appender.write(letters(i * 2, 2)).await.unwrap();
        }
        assert_eq!(appender.commit(vec![]).await.unwrap(), Some(1));
        let sources = lake
            .string_keys(LakeTable::DeadLetters, "source")
            .await
            .unwrap();
        assert_eq!(sources.len(), 8);
        let files = std::fs::read_dir(dir.path().join("dead_letters"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("parquet".as_ref()))
            .count();
        assert!(files >= 2, "{files} files: the early flushes closed none");
    }
}
