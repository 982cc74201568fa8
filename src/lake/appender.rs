use arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::parquet::basic::{Compression, Encoding, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};

use super::fence::{Claim, Winner};
use super::files::{DataFiles, PartitionValue, RowGroupRows};
use super::{LakeError, LakeTable};

const ROW_GROUP_ROWS: usize = 256 * 1024;
/// A pass's commit is tried at most this often while other commits keep landing first
/// (each time after checking them); then it fails as fenced and the pass starts again.
const CLAIM_ATTEMPTS: usize = 20;
const PAGE_BYTES: usize = 128 * 1024;
/// Rows per data page at most: the page index then narrows a one-Workspace query to a few
/// pages of each row group (rows are in Workspace order within it).
const PAGE_ROWS: usize = 8 * 1024;
/// Open files hold their compressed bytes until they close; closing them all every this many
/// rows keeps memory flat however long the input is (at the cost of one more file per
/// partition each time).
const FLUSH_ROWS: usize = 1024 * 1024;
/// Columns of a few distinct values: dictionary indices, already run-length and bit-packed,
/// that zstd shrinks by almost nothing (measured: the same lake size to 0.1%). Every
/// compressed column of every row group gets its own zstd compressor and decompressor, so
/// these are left uncompressed.
const LOW_CARDINALITY_COLUMNS: &[&str] = &[
    "slice",
    "traffic_type",
    "currency",
    "operator_name",
    "mcc",
    "mnc",
    "country_name",
    "ingested_at",
    "reason",
    "event_type",
    "status",
    "period",
    "invoice_id",
    "role",
];
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

/// The lake's compression: zstd at level 1, fast to write and still small.
pub(super) fn zstd() -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default())
}

/// Streams record batches into one table and commits them in one Delta transaction.
pub struct TableAppender {
    table: LakeTable,
    delta: DeltaTable,
    files: DataFiles,
    rows: usize,
    rows_since_flush: usize,
    flush_rows: usize,
    /// Files already closed, committed together with the rest.
    closed: Vec<Add>,
    /// Provenance recorded in the commit's `commitInfo` (key, value).
    commit_info: Vec<(String, serde_json::Value)>,
    /// Files this commit replaces (see [`TableAppender::replace_partitions`]), and the
    /// predicate that names them.
    replaced: Vec<Action>,
    replace_predicate: Option<String>,
    /// Set when this commit rewrites files without changing the rows (compaction, a layout
    /// migration): the operation to record.
    rewrite: Option<DeltaOperation>,
}

impl TableAppender {
    pub(super) fn new(table: LakeTable, delta: DeltaTable) -> Result<Self, DeltaTableError> {
        let mut props = WriterProperties::builder()
            .set_compression(zstd())
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_size_limit(PAGE_BYTES)
            .set_data_page_row_count_limit(PAGE_ROWS);
        // Nearly every value of these columns is distinct: building a dictionary for them
        // only costs time before the writer falls back to plain encoding.
        for column in UNIQUE_COLUMNS {
            props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        // Provenance, read by the row, never filtered by range: minimum and maximum cost a
        // comparison of a long shared prefix per value.
        for column in ["source", "payload"] {
            props = props.set_column_statistics_enabled(
                ColumnPath::from(column),
                deltalake::parquet::file::properties::EnabledStatistics::None,
            );
        }
        // `source` is the input's name and a line or offset: each value shares most of its
        // bytes with the one before, which DELTA_BYTE_ARRAY stores once (every Parquet
        // reader of the Delta ecosystem decodes it), so zstd is left a tenth of the bytes.
        props = props.set_column_encoding(ColumnPath::from("source"), Encoding::DELTA_BYTE_ARRAY);
        for column in LOW_CARDINALITY_COLUMNS {
            props =
                props.set_column_compression(ColumnPath::from(*column), Compression::UNCOMPRESSED);
        }
        let files = DataFiles::new(
            delta.object_store(),
            table.schema(),
            table.partition_columns(),
            props.build(),
        )?;
        Ok(TableAppender {
            table,
            delta,
            files,
            rows: 0,
            rows_since_flush: 0,
            flush_rows: FLUSH_ROWS,
            closed: Vec::new(),
            commit_info: Vec::new(),
            replaced: Vec::new(),
            replace_predicate: None,
            rewrite: None,
        })
    }

    pub fn table(&self) -> LakeTable {
        self.table
    }

    /// The data files of the table as this appender read it.
    pub fn data_files(&self) -> Result<Vec<super::cluster::DataFile>, LakeError> {
        let state = self.delta.snapshot().map_err(|e| self.error(e))?;
        Ok(state
            .log_data()
            .iter()
            .map(|file| super::cluster::DataFile {
                path: file.path().to_string(),
                size: file.size(),
                modified: file.modification_time(),
            })
            .collect())
    }

    /// The URL a session reads the data file `path` (relative to the table) at.
    pub fn file_url(&self, path: &str) -> Result<String, DeltaTableError> {
        let root = self.delta.table_url().clone();
        let root = match root.as_str().ends_with('/') {
            true => root,
            false => url::Url::parse(&format!("{root}/"))
                .map_err(|e| DeltaTableError::Generic(e.to_string()))?,
        };
        Ok(root
            .join(path)
            .map_err(|e| DeltaTableError::Generic(e.to_string()))?
            .to_string())
    }

    /// Lets `ctx` read the table's files (registers its object store).
    pub fn prepare_session(&self, ctx: &SessionContext) -> Result<(), LakeError> {
        self.delta
            .update_datafusion_session(&ctx.state())
            .map_err(|e| self.error(e))
    }

    /// Registers the version this appender read with `ctx` as `name`.
    pub async fn register_as(&self, ctx: &SessionContext, name: &str) -> Result<(), LakeError> {
        let provider = self
            .delta
            .table_provider()
            .await
            .map_err(|e| self.error(DeltaTableError::Generic(e.to_string())))?;
        ctx.register_table(name, provider)
            .map_err(|e| self.error(DeltaTableError::Generic(e.to_string())))?;
        Ok(())
    }

    /// Writes one file at a time (each closed at the target size), so that rows written in
    /// order stay in order across files: a clustered rewrite.
    pub fn one_file_at_a_time(mut self) -> Self {
        self.files.one_file_at_a_time();
        self
    }

    /// Makes this commit a rewrite of `files` (of the table as this appender read it): they
    /// are removed and the rows written take their place, with no data change for readers.
    /// A concurrent commit that removes any of them makes this one conflict. With `layout`,
    /// the table's metadata (its partition columns) changes in the same commit.
    pub fn rewrite_files(
        &mut self,
        files: &[String],
        layout: Option<deltalake::kernel::Metadata>,
    ) -> Result<(), LakeError> {
        let state = self.delta.snapshot().map_err(|e| self.error(e))?;
        for file in state.log_data().iter() {
            if files.iter().any(|f| f.as_str() == file.path().as_ref()) {
                let remove = file.remove_action(layout.is_some());
                self.replaced.push(Action::Remove(remove));
            }
        }
        self.rewrite = Some(match &layout {
            None => DeltaOperation::Optimize {
                predicate: None,
                target_size: super::files::TARGET_FILE_BYTES as i64,
            },
            Some(metadata) => DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(metadata.partition_columns().to_vec()),
                predicate: None,
            },
        });
        self.replaced.extend(layout.map(Action::Metadata));
        Ok(())
    }

    /// Closes the open files every `rows` rows instead of every [`FLUSH_ROWS`].
    pub fn flush_every(mut self, rows: usize) -> Self {
        self.flush_rows = rows;
        self
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether a commit would change the table (rows, files replaced) or record something.
    pub fn has_changes(&self) -> bool {
        self.rows > 0 || !self.commit_info.is_empty() || !self.replaced.is_empty()
    }

    /// The version recorded under the `txn` application id `app_id` in the version this
    /// appender read, if any.
    pub async fn recorded(&self, app_id: &str) -> Result<Option<i64>, LakeError> {
        let snapshot = self.delta.snapshot().map_err(|e| self.error(e))?;
        snapshot
            .transaction_version(self.delta.log_store().as_ref(), app_id)
            .await
            .map_err(|e| self.error(e))
    }

    /// The commits made to the table after `version`, up to the version this appender read.
    pub async fn commits_since(&self, version: i64) -> Result<Vec<Winner>, LakeError> {
        let Some(read) = self.delta.version() else {
            return Ok(Vec::new());
        };
        let first = u64::try_from(version + 1).unwrap_or(0);
        let mut commits = Vec::new();
        for (version, winner) in self.winners_between(first, read).await? {
            // A log with a gap, or a commit simtally cannot read: not a lake it wrote.
            let corrupt = |detail: String| LakeError::Corrupt {
                table: self.table.name(),
                detail,
            };
            let winner = winner
                .ok_or_else(|| corrupt(format!("commit {version} is missing from the log")))?
                .map_err(|e| corrupt(format!("commit {version} is not valid JSON: {e}")))?;
            commits.push(winner);
        }
        Ok(commits)
    }

    /// What each commit from `first` to `last` (both included) did: `None` for a commit whose
    /// entry is gone (cleaned up after a checkpoint), an error for one that does not parse.
    async fn winners_between(
        &self,
        first: u64,
        last: u64,
    ) -> Result<Vec<(u64, Option<Result<Winner, serde_json::Error>>)>, LakeError> {
        let log_store = self.delta.log_store();
        let mut winners = Vec::new();
        for version in first..=last {
            let entry = (log_store.read_commit_entry(version).await).map_err(|e| self.error(e))?;
            winners.push((version, entry.map(|bytes| Winner::from_commit(&bytes))));
        }
        Ok(winners)
    }

    /// The table version this appender read, which its commit is checked against.
    pub fn read_version(&self) -> Option<i64> {
        self.delta.version().map(|v| v as i64)
    }

    /// Records `value` under `key` in the commit's `commitInfo`; the commit then happens
    /// even if no rows were written.
    pub fn record_in_commit(&mut self, key: &str, value: serde_json::Value) {
        self.commit_info.push((key.to_owned(), value));
    }

    /// Removes, in this commit, every file of the partitions where `column` (a BIGINT
    /// partition column) is one of `values`, as the table stood when this appender opened
    /// it: the rows written take their place. A concurrent commit that removes the same
    /// files makes this one conflict.
    pub fn replace_partitions(&mut self, column: &str, values: &[i64]) -> Result<(), LakeError> {
        let wanted: Vec<String> = values.iter().map(i64::to_string).collect();
        let state = self.delta.snapshot().map_err(|e| self.error(e))?;
        for file in state.log_data().iter() {
            let value = file.partition_values_map().get(column).cloned().flatten();
            if value.is_some_and(|v| wanted.contains(&v)) {
                self.replaced.push(Action::Remove(file.remove_action(true)));
            }
        }
        self.replace_predicate = Some(format!("{column} IN ({})", wanted.join(", ")));
        Ok(())
    }

    /// Writes rows of a table without partition columns, as one row group.
    pub async fn write(&mut self, batch: RecordBatch) -> Result<(), LakeError> {
        self.write_partition(&[batch], &[]).await
    }

    /// Writes pieces of rows of a table without partition columns, as one row group.
    pub async fn write_pieces(&mut self, pieces: Vec<RecordBatch>) -> Result<(), LakeError> {
        self.write_rows(RowGroupRows::Batches(pieces), &[]).await
    }

    /// Writes pieces of rows that all belong to one partition, given as (column, value) pairs
    /// in the table's partition column order. The pieces become one row group of that
    /// partition's file, so callers should gather rows to a useful size first.
    pub async fn write_partition(
        &mut self,
        pieces: &[RecordBatch],
        partition: &[(&str, PartitionValue)],
    ) -> Result<(), LakeError> {
        self.write_rows(RowGroupRows::Batches(pieces.to_vec()), partition)
            .await
    }

    /// As [`TableAppender::write_partition`], for rows given as [`RowGroupRows`].
    pub async fn write_rows(
        &mut self,
        rows: RowGroupRows,
        partition: &[(&str, PartitionValue)],
    ) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = partition.iter().map(|(column, _)| *column).collect();
        if names != self.table.partition_columns() {
            return Err(LakeError::Corrupt {
                table: self.table.name(),
                detail: format!("rows were given for partition columns {names:?}"),
            });
        }
        let values: Vec<PartitionValue> = partition.iter().map(|(_, value)| *value).collect();
        let count = rows.len();
        let closed = self
            .files
            .write(rows, &values)
            .await
            .map_err(|e| self.error(e))?;
        self.closed.extend(closed);
        self.wrote(count).await
    }

    /// Counts written rows and closes the open files when enough have gathered.
    async fn wrote(&mut self, rows: usize) -> Result<(), LakeError> {
        self.rows += rows;
        self.rows_since_flush += rows;
        if self.rows_since_flush >= self.flush_rows {
            self.rows_since_flush = 0;
            let adds = self.files.close_all().await.map_err(|e| self.error(e))?;
            self.closed.extend(adds);
        }
        Ok(())
    }

    /// Closes the open data files and puts them, for a [`TableAppender::commit`] later. A file
    /// no commit names is not part of the table (and `lake vacuum` removes it), so a plan of
    /// several commits can finish every table's files first, all at once.
    pub async fn finish_files(&mut self) -> Result<(), LakeError> {
        let adds = self.files.close_all().await.map_err(|e| self.error(e))?;
        self.closed.extend(adds);
        Ok(())
    }

    /// Commits what was written, recording `txns` (application ids and versions) in the same
    /// Delta transaction. Returns the new table version, or `None` if nothing was written.
    pub async fn commit(self, txns: Vec<Transaction>) -> Result<Option<i64>, LakeError> {
        Ok(self.commit_counted(txns).await?.0)
    }

    /// As [`TableAppender::commit`], also saying how many data files the commit added.
    pub async fn commit_counted(
        mut self,
        txns: Vec<Transaction>,
    ) -> Result<(Option<i64>, usize), LakeError> {
        if self.rows == 0
            && txns.is_empty()
            && self.commit_info.is_empty()
            && self.replaced.is_empty()
            && self.rewrite.is_none()
        {
            return Ok((None, 0));
        }
        let last = self.files.close_all().await.map_err(|e| self.error(e))?;
        let compaction = matches!(self.rewrite, Some(DeltaOperation::Optimize { .. }));
        let adds: Vec<Action> = std::mem::take(&mut self.closed)
            .into_iter()
            .chain(last)
            .map(|add| Add {
                data_change: !compaction,
                ..add
            })
            .map(Action::Add)
            .collect();
        let added = adds.len();
        let adds: Vec<Action> = adds
            .into_iter()
            .chain(std::mem::take(&mut self.replaced))
            .collect();
        let partition_by = Some(
            self.table
                .partition_columns()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
        )
        .filter(|cols| !cols.is_empty());
        let operation = match (self.rewrite.take(), self.replace_predicate.take()) {
            (Some(rewrite), _) => rewrite,
            (None, None) => DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by,
                predicate: None,
            },
            (None, predicate) => DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by,
                predicate,
            },
        };
        let rewrites = adds.iter().any(|a| !matches!(a, Action::Add(_)));
        let claim = Claim::of(&txns, rewrites);
        let properties = CommitProperties::default()
            .with_application_transactions(txns)
            .with_metadata(std::mem::take(&mut self.commit_info));
        let version = match claim {
            Some(claim) => {
                self.commit_claimed(&claim, adds, operation, properties)
                    .await?
            }
            None => {
                let snapshot = self.delta.snapshot().map_err(|e| self.error(e))?;
                CommitBuilder::from(properties)
                    .with_actions(adds)
                    .build(Some(snapshot), self.delta.log_store(), operation)
                    .await
                    .map_err(|e| self.error(e))?
                    .version()
            }
        };
        Ok((Some(version as i64), added))
    }

    /// Commits a pass's actions (see [`Claim`]): checks each commit made since this
    /// appender's read, fails if the claim yields to one, and otherwise commits on top of
    /// them with no retry of Delta's own; a commit that lands meanwhile is checked the same
    /// way.
    async fn commit_claimed(
        &mut self,
        claim: &Claim,
        actions: Vec<Action>,
        operation: DeltaOperation,
        properties: CommitProperties,
    ) -> Result<u64, LakeError> {
        use deltalake::kernel::transaction::TransactionError;
        let fenced = LakeError::Fenced {
            table: self.table.name(),
        };
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(read) = self.delta.version() else {
                return Err(LakeError::Internal("a commit to an unloaded table".into()));
            };
            let log_store = self.delta.log_store();
            let latest = log_store
                .get_latest_version(read)
                .await
                .map_err(|e| self.error(e))?;
            // A commit gone from the log or not understood may have done anything: yield.
            for (_, winner) in self.winners_between(read + 1, latest).await? {
                match winner {
                    Some(Ok(winner)) if !claim.yields_to(&winner) => {}
                    _ => return Err(fenced),
                }
            }
            if latest > read {
                (self.delta.update_incremental(Some(latest)).await).map_err(|e| self.error(e))?;
            }
            let snapshot = self.delta.snapshot().map_err(|e| self.error(e))?;
            let built = CommitBuilder::from(properties.clone().with_max_retries(0))
                .with_actions(actions.clone())
                .build(Some(snapshot), log_store, operation.clone())
                .await;
            match built {
                Ok(done) => return Ok(done.version()),
                Err(DeltaTableError::VersionAlreadyExists(_))
                | Err(DeltaTableError::Transaction {
                    source: TransactionError::MaxCommitAttempts(_),
                }) => continue,
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(fenced)
    }

    fn error(&self, source: DeltaTableError) -> LakeError {
        LakeError::Delta {
            table: self.table.name(),
            url: self.delta.table_url().to_string(),
            cause: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UtcMillis;
    use crate::domain::{Reason, Rejection};
    use crate::lake::{Lake, LakeLocation};
    use crate::tables::dead_letters::{DeadLetter, DeadLetterRows};
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    use deltalake::kernel::StructType;

    fn letters(from: usize, count: usize) -> RecordBatch {
        let mut rows = DeadLetterRows::new(UtcMillis::from_millis(0));
        for n in from..from + count {
            rows.append(&DeadLetter {
                source: format!("t:{n}"),
                rejection: Rejection::new(Reason::NotJson, "x".into()),
                payload: vec![b'x'],
                key: None,
                input: crate::tables::dead_letters::LetterInput::Usage,
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

    #[tokio::test]
    async fn a_table_partitioned_otherwise_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(LakeLocation::parse(dir.path().to_str().unwrap()).unwrap());
        // As simtally wrote `usage` when it was partitioned by Workspace and day.
        let table = LakeTable::Usage;
        lake.location.prepare_table(table.name()).unwrap();
        let columns: StructType = table.schema().as_ref().try_into_kernel().unwrap();
        lake.builder(table)
            .unwrap()
            .build()
            .unwrap()
            .create()
            .with_columns(columns.fields().cloned())
            .with_partition_columns(["workspace_id", "usage_date"])
            .await
            .unwrap();

        let refused = lake.appender(table).await.err().unwrap().to_string();
        assert!(
            refused.contains(r#"partitioned by ["workspace_id", "usage_date"]"#)
                && refused.contains("simtally lake migrate"),
            "{refused}"
        );
        assert!(lake.appender(LakeTable::Quarantine).await.is_ok());
    }
}
