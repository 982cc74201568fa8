//! The Parquet data files of one table while an ingest writes them: one open file per
//! partition (for a table without partitions, one per encoder thread), each batch written as
//! one whole row group.
//!
//! Why not delta-rs's `RecordBatchWriter`: it keeps a row group in progress in every open
//! file, and each column of it holds a page buffer and a zstd compressor and decompressor.
//! A partitioned ingest has hundreds of files open at once, which made that more than half
//! of the process's memory (docs/performance.md). Here a row group is started and finished
//! in one go, so that state exists only for the row groups being encoded (one per core, on
//! the encoder threads) and is reused from the allocator's warm memory; between batches an
//! open file is only its compressed bytes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use arrow::compute::{concat_batches, interleave};
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use deltalake::kernel::Add;
use deltalake::logstore::ObjectStoreRef;
use deltalake::DeltaTableError;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::encoders;
use super::stats::file_stats;

/// The value of one partition column (the only partitioned table, `sim_events_snapshot`, is
/// partitioned by a BIGINT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionValue {
    Long(i64),
}

impl PartitionValue {
    /// The value as the Delta log and the directory name write it.
    fn serialize(self) -> String {
        match self {
            PartitionValue::Long(v) => v.to_string(),
        }
    }
}

/// A row group being encoded; it gives its file back when done.
type Encoding = tokio::sync::oneshot::Receiver<Result<OpenFile, DeltaTableError>>;

/// The rows of one row group.
pub enum RowGroupRows {
    /// Every row of these batches, in order.
    Batches(Vec<RecordBatch>),
    /// These rows, as (batch, row) of `batches`, which other row groups pick from too:
    /// a partition's rows gathered from many chunks, without cutting each chunk into a
    /// slice per partition.
    Picked {
        batches: Arc<[RecordBatch]>,
        rows: Vec<(usize, usize)>,
    },
}

impl RowGroupRows {
    pub fn len(&self) -> usize {
        match self {
            RowGroupRows::Batches(batches) => batches.iter().map(RecordBatch::num_rows).sum(),
            RowGroupRows::Picked { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows as one batch of the file's columns (`columns` of the table's).
    fn into_file_batch(
        self,
        file_schema: &SchemaRef,
        columns: &[usize],
    ) -> Result<RecordBatch, DeltaTableError> {
        Ok(match self {
            // Pieces are often a few rows each; the Parquet writer handles one batch much faster.
            RowGroupRows::Batches(pieces) => match pieces.as_slice() {
                [one] => one.project(columns)?,
                _ => concat_batches(file_schema, &projected(&pieces, columns)?)?,
            },
            RowGroupRows::Picked { batches, rows } => {
                let picked = columns
                    .iter()
                    .map(|&column| {
                        let arrays: Vec<&dyn Array> =
                            batches.iter().map(|b| b.column(column).as_ref()).collect();
                        interleave(&arrays, &rows)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                RecordBatch::try_new(file_schema.clone(), picked)?
            }
        })
    }
}

/// Files roll over at this size, so a long ingest makes a few large files.
pub(super) const TARGET_FILE_BYTES: usize = 128 * 1024 * 1024;
/// Closed files being stored at once.
const PUTS_AT_ONCE: usize = 8;

pub(super) struct DataFiles {
    store: ObjectStoreRef,
    /// The table's columns without the partition columns (which live in the path).
    file_schema: SchemaRef,
    data_columns: Vec<usize>,
    partition_columns: &'static [&'static str],
    props: WriterProperties,
    writer_id: uuid::Uuid,
    files_started: usize,
    open: HashMap<FileSlot, OpenFile>,
    /// Row groups being encoded, each task owning its file until it is done.
    encoding: FuturesUnordered<Encoding>,
    /// The slots of the files in `encoding`.
    busy: Vec<FileSlot>,
    most_encoding: usize,
    /// Open files of a table without partitions (one per encoder thread, or one).
    unpartitioned_slots: usize,
}

/// Which open file a row group goes to: its partition, and for a table without partition
/// columns one of a few files, so that row groups are encoded on all encoder threads at once.
type FileSlot = (Vec<PartitionValue>, usize);

struct OpenFile {
    path: Path,
    slot: FileSlot,
    writer: ArrowWriter<Blocks>,
}

/// A file's bytes in blocks that are never moved: one buffer grown by doubling copied the
/// whole file into fresh memory each time (2.5 % of a 1 M ingest's CPU, in page faults).
/// The store takes the blocks as they are.
#[derive(Default)]
struct Blocks {
    full: Vec<Bytes>,
    current: Vec<u8>,
}

impl Blocks {
    const FIRST: usize = 64 * 1024;
    const LARGEST: usize = 4 * 1024 * 1024;

    fn len(&self) -> usize {
        self.full.iter().map(Bytes::len).sum::<usize>() + self.current.len()
    }

    fn into_payload(self) -> PutPayload {
        let last = (!self.current.is_empty()).then(|| Bytes::from(self.current));
        self.full.into_iter().chain(last).collect()
    }
}

impl Write for Blocks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.current.len() == self.current.capacity() {
            // Each block twice the last, so a large file is a few blocks.
            let next = (self.current.capacity() * 2).clamp(Self::FIRST, Self::LARGEST);
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(next));
            if !full.is_empty() {
                self.full.push(full.into());
            }
        }
        let room = self.current.capacity() - self.current.len();
        let taken = room.min(buf.len());
        self.current.extend_from_slice(&buf[..taken]);
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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
            encoding: FuturesUnordered::new(),
            busy: Vec::new(),
            most_encoding: encoders::threads(),
            unpartitioned_slots: encoders::threads(),
        })
    }

    /// Writes pieces of rows that all belong to `partition` (one value per partition column,
    /// in order: the appender checks that) as one row group. The encoding runs on an encoder
    /// thread (see [`encoders`]), several partitions at once; this returns once it has
    /// started, with the files that earlier writes filled and closed.
    pub(super) async fn write(
        &mut self,
        rows: RowGroupRows,
        partition: &[PartitionValue],
    ) -> Result<Vec<Add>, DeltaTableError> {
        let mut closed = Vec::new();
        while self.encoding.len() >= self.most_encoding {
            closed.extend(self.finish_one_encoding().await?);
        }
        // A file takes one row group at a time: a free slot, or wait for the partition's.
        let slots = match partition.is_empty() {
            true => self.unpartitioned_slots,
            false => 1,
        };
        let slot = loop {
            let free = (0..slots).find(|&s| !self.busy.contains(&(partition.to_vec(), s)));
            match free {
                Some(s) => break (partition.to_vec(), s),
                None => closed.extend(self.finish_one_encoding().await?),
            }
        };
        let mut file = match self.open.remove(&slot) {
            Some(file) => file,
            None => self.start_file(slot.clone())?,
        };
        self.busy.push(slot);
        let (schema, columns) = (self.file_schema.clone(), self.data_columns.clone());
        self.encoding.push(encoders::run(move || {
            let rows = rows.into_file_batch(&schema, &columns)?;
            file.writer.write(&rows)?;
            file.writer.flush()?;
            Ok(file)
        }));
        Ok(closed)
    }

    /// Waits for one row group to be encoded; returns its file if that filled it.
    async fn finish_one_encoding(&mut self) -> Result<Option<Add>, DeltaTableError> {
        let Some(done) = self.encoding.next().await else {
            return Ok(None);
        };
        let file = done.map_err(|_| {
            DeltaTableError::Generic("encoding a row group failed (the encoder stopped)".into())
        })??;
        if let Some(i) = self.busy.iter().position(|busy| *busy == file.slot) {
            self.busy.swap_remove(i);
        }
        if file.writer.bytes_written() < TARGET_FILE_BYTES {
            self.open.insert(file.slot.clone(), file);
            return Ok(None);
        }
        self.finish(file).await.map(Some)
    }

    /// Row groups of a table without partitions go to one file, closed at the target size.
    pub(super) fn one_file_at_a_time(&mut self) {
        self.unpartitioned_slots = 1;
    }

    /// Closes every open file.
    pub(super) async fn close_all(&mut self) -> Result<Vec<Add>, DeltaTableError> {
        let mut adds = Vec::new();
        while !self.encoding.is_empty() {
            adds.extend(self.finish_one_encoding().await?);
        }
        let mut files: Vec<OpenFile> = self.open.drain().map(|(_, file)| file).collect();
        files.sort_by(|a, b| a.path.as_ref().cmp(b.path.as_ref()));
        // Local puts block on the file system and remote ones wait on the network: many at once.
        let finished = futures::stream::iter(files.into_iter().map(|file| self.finish(file)))
            .buffered(PUTS_AT_ONCE)
            .try_collect::<Vec<Add>>()
            .await?;
        adds.extend(finished);
        Ok(adds)
    }

    fn start_file(&mut self, slot: FileSlot) -> Result<OpenFile, DeltaTableError> {
        let name = format!(
            "part-{:05}-{}-c000.zstd.parquet",
            self.files_started, self.writer_id
        );
        self.files_started += 1;
        let directory: Vec<String> = self
            .partition_columns
            .iter()
            .zip(&slot.0)
            .map(|(column, value)| format!("{column}={}", value.serialize()))
            .collect();
        let path = if directory.is_empty() {
            name
        } else {
            format!("{}/{name}", directory.join("/"))
        };
        let writer = ArrowWriter::try_new(
            Blocks::default(),
            self.file_schema.clone(),
            Some(self.props.clone()),
        )?;
        Ok(OpenFile {
            path: Path::parse(path)?,
            slot,
            writer,
        })
    }

    async fn finish(&self, mut file: OpenFile) -> Result<Add, DeltaTableError> {
        let metadata = file.writer.finish()?;
        // `finish` flushed everything to the buffer; `into_inner` would flush a second time.
        let blocks = std::mem::take(file.writer.inner_mut());
        let size = blocks.len() as i64;
        self.store.put(&file.path, blocks.into_payload()).await?;
        let partition_values = self
            .partition_columns
            .iter()
            .zip(&file.slot.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocks_hold_exactly_the_bytes_written(
            pieces in proptest::collection::vec((any::<u8>(), 0usize..300_000), 0..12),
        ) {
            let mut blocks = Blocks::default();
            let mut expected = Vec::new();
            for (byte, len) in pieces {
                let piece = vec![byte; len];
                blocks.write_all(&piece).unwrap();
                expected.extend_from_slice(&piece);
            }
            prop_assert_eq!(blocks.len(), expected.len());
            let written: Vec<u8> = blocks
                .into_payload()
                .iter()
                .flat_map(|block| block.iter().copied())
                .collect();
            prop_assert_eq!(written, expected);
        }
    }
}
