//! The Parquet data files of one table while an ingest writes them: one open file per
//! partition, each batch written as one whole row group.
//!
//! Why not delta-rs's `RecordBatchWriter`: it keeps a row group in progress in every open
//! file, and each column of it holds a page buffer and a zstd compressor and decompressor.
//! A partitioned ingest has hundreds of files open at once, which made that more than half
//! of the process's memory (README, Performance). Here a row group is started and finished
//! within one `write`, so that state exists for one file at a time and is reused from the
//! allocator's warm memory; between batches an open file is only its compressed bytes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use deltalake::DeltaTableError;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::stats::file_stats;

/// The value of one partition column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionValue {
    Long(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

impl PartitionValue {
    /// The value as the Delta log and the directory name write it.
    fn serialize(self) -> String {
        match self {
            PartitionValue::Long(v) => v.to_string(),
            PartitionValue::Date(days) => NaiveDate::from_epoch_days(days)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| days.to_string()),
        }
    }
}

/// Files roll over at this size, so a long ingest makes a few large files per partition.
pub(super) const TARGET_FILE_BYTES: usize = 128 * 1024 * 1024;

pub(super) struct DataFiles {
    store: ObjectStoreRef,
    /// The table's columns without the partition columns (which live in the path).
    file_schema: SchemaRef,
    data_columns: Vec<usize>,
    partition_columns: &'static [&'static str],
    props: WriterProperties,
    writer_id: uuid::Uuid,
    files_started: usize,
    open: HashMap<Vec<PartitionValue>, OpenFile>,
}

struct OpenFile {
    path: Path,
    partition: Vec<PartitionValue>,
    writer: ArrowWriter<Vec<u8>>,
}

impl DataFiles {
    pub(super) fn new(
        store: ObjectStoreRef,
        table_schema: SchemaRef,
        partition_columns: &'static [&'static str],
        props: WriterProperties,
    ) -> Result<Self, DeltaTableError> {
        let data_columns: Vec<usize> = table_schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !partition_columns.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let file_schema = Arc::new(table_schema.project(&data_columns)?);
        Ok(DataFiles {
            store,
            file_schema,
            data_columns,
            partition_columns,
            props,
            writer_id: uuid::Uuid::new_v4(),
            files_started: 0,
            open: HashMap::new(),
        })
    }

    /// Writes pieces of rows that all belong to `partition` (one value per partition column,
    /// in order: the appender checks that) as one row group. Returns the file it closed, if the write filled it.
    pub(super) async fn write(
        &mut self,
        pieces: &[RecordBatch],
        partition: &[PartitionValue],
    ) -> Result<Option<Add>, DeltaTableError> {
        let file = match self.open.get_mut(partition) {
            Some(file) => file,
            None => {
                let file = self.start_file(partition)?;
                self.open.entry(partition.to_vec()).or_insert(file)
            }
        };
        // Pieces are often a few rows each; the Parquet writer handles one batch much faster.
        let rows = match pieces {
            [one] => one.project(&self.data_columns)?,
            _ => concat_batches(&self.file_schema, &projected(pieces, &self.data_columns)?)?,
        };
        file.writer.write(&rows)?;
        file.writer.flush()?;
        if file.writer.bytes_written() < TARGET_FILE_BYTES {
            return Ok(None);
        }
        match self.open.remove(partition) {
            Some(file) => self.finish(file).await.map(Some),
            None => Ok(None),
        }
    }

    /// Closes every open file.
    pub(super) async fn close_all(&mut self) -> Result<Vec<Add>, DeltaTableError> {
        let mut files: Vec<OpenFile> = self.open.drain().map(|(_, file)| file).collect();
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        let mut adds = Vec::with_capacity(files.len());
        for file in files {
            adds.push(self.finish(file).await?);
        }
        Ok(adds)
    }

    fn start_file(&mut self, partition: &[PartitionValue]) -> Result<OpenFile, DeltaTableError> {
        let name = format!(
            "part-{:05}-{}-c000.zstd.parquet",
            self.files_started, self.writer_id
        );
        self.files_started += 1;
        let directory: Vec<String> = self
            .partition_columns
            .iter()
            .zip(partition)
            .map(|(column, value)| format!("{column}={}", value.serialize()))
            .collect();
        let path = if directory.is_empty() {
            name
        } else {
            format!("{}/{name}", directory.join("/"))
        };
        let writer = ArrowWriter::try_new(
            Vec::new(),
            self.file_schema.clone(),
            Some(self.props.clone()),
        )?;
        Ok(OpenFile {
            path: Path::parse(path)?,
            partition: partition.to_vec(),
            writer,
        })
    }

    async fn finish(&self, mut file: OpenFile) -> Result<Add, DeltaTableError> {
        let metadata = file.writer.finish()?;
        // `finish` flushed everything to the buffer; `into_inner` would flush a second time.
        let bytes = std::mem::take(file.writer.inner_mut());
        let size = bytes.len() as i64;
        self.store.put(&file.path, bytes.into()).await?;
        let partition_values = self
            .partition_columns
            .iter()
            .zip(&file.partition)
            .map(|(column, value)| (column.to_string(), Some(value.serialize())))
            .collect();
        Ok(Add {
            path: file.path.to_string(),
            size,
            partition_values,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(file_stats(&metadata, &self.file_schema)),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}

fn projected(
    pieces: &[RecordBatch],
    columns: &[usize],
) -> Result<Vec<RecordBatch>, DeltaTableError> {
    Ok(pieces
        .iter()
        .map(|piece| piece.project(columns))
        .collect::<Result<_, _>>()?)
}
