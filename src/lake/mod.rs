//! lake: the Delta tables under one root URL, written through object_store.

mod appender;
mod cluster;
pub mod crash;
mod encoders;
mod fence;
mod files;
mod location;
mod maintenance;
pub mod schema;
mod stats;

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::prelude::SessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::StructType;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

pub use appender::TableAppender;
pub use cluster::{cluster_order, DataFile};
pub(crate) use encoders::threads as encoder_threads;
pub use fence::{
    back_off, retry_while_refused, Claim, Fence, Winner, FENCED_RETRIES, FENCE_APP_ID,
    KAFKA_APP_ID_PREFIX,
};
pub use files::{PartitionValue, RowGroupRows};
pub use location::LakeLocation;
pub use maintenance::{Maintained, TableMaintenance};

/// Column `i` of `batch` as plain UTF-8 strings: scans may hand strings back as Utf8View.
pub fn utf8_column(batch: &RecordBatch, i: usize) -> Result<arrow::array::StringArray, String> {
    let utf8 = arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8)
        .map_err(|e| format!("column {i}: {e}"))?;
    Ok(utf8.as_string::<i32>().clone())
}

/// The tables simtally writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LakeTable {
    Usage,
    Quarantine,
    DeadLetters,
    SimEvents,
    Invoices,
    BilledSlices,
    Workspaces,
    Memberships,
    TransferLog,
    SimEventsSnapshot,
}

impl LakeTable {
    pub const ALL: [LakeTable; 10] = [
        LakeTable::Usage,
        LakeTable::Quarantine,
        LakeTable::DeadLetters,
        LakeTable::SimEvents,
        LakeTable::Invoices,
        LakeTable::BilledSlices,
        LakeTable::Workspaces,
        LakeTable::Memberships,
        LakeTable::TransferLog,
        LakeTable::SimEventsSnapshot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LakeTable::Usage => "usage",
            LakeTable::Quarantine => "quarantine",
            LakeTable::DeadLetters => "dead_letters",
            LakeTable::SimEvents => "sim_events",
            LakeTable::Invoices => "invoices",
            LakeTable::BilledSlices => "billed_slices",
            LakeTable::Workspaces => "workspaces",
            LakeTable::Memberships => "memberships",
            LakeTable::TransferLog => "transfer_log",
            LakeTable::SimEventsSnapshot => "sim_events_snapshot",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            LakeTable::Usage => schema::USAGE.clone(),
            LakeTable::Quarantine => schema::QUARANTINE.clone(),
            LakeTable::DeadLetters => schema::DEAD_LETTERS.clone(),
            LakeTable::SimEvents => schema::SIM_EVENTS.clone(),
            LakeTable::Invoices => schema::INVOICES.clone(),
            LakeTable::BilledSlices => schema::BILLED_SLICES.clone(),
            LakeTable::Workspaces => schema::WORKSPACES.clone(),
            LakeTable::Memberships => schema::MEMBERSHIPS.clone(),
            LakeTable::TransferLog => schema::TRANSFER_LOG.clone(),
            LakeTable::SimEventsSnapshot => schema::SIM_EVENTS_SNAPSHOT.clone(),
        }
    }

    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            // `usage` is not partitioned (docs/lake-layout.md): a partition per Workspace
            // made a file per Workspace per ingest (3,000 a day for a provider). Rows are
            // clustered by Workspace, day and ICCID instead, within each row group as it is
            // written and across files by `lake maintain`, and file, row-group and page
            // statistics skip the rest.
            LakeTable::SimEventsSnapshot => &["kafka_partition"],
            _ => &[],
        }
    }
}

/// Errors of the lake layer. `Location` and `OtherLayout` are the user's to fix; `Storage`
/// and `Delta` come from the object store or the table log; `Corrupt` means the lake holds
/// something simtally did not write.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(
        "'{0}' is not a lake location: give a directory path or a file://, memory:// or s3:// URL"
    )]
    Location(String),
    #[error("cannot prepare the lake directory {path}: {cause}")]
    Directory { path: String, cause: std::io::Error },
    #[error("no lake at {0}: run `simtally ingest` first")]
    NotFound(String),
    #[error("table {table} at {url}: {cause}")]
    Delta {
        table: &'static str,
        url: String,
        cause: Box<DeltaTableError>,
    },
    #[error("reading table {table}: {cause}")]
    Read {
        table: &'static str,
        cause: Box<datafusion::error::DataFusionError>,
    },
    #[error("table {table} has an unexpected layout: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error(
        "table {table} is partitioned by {found:?}, and this simtally writes it partitioned \
         by {expected:?} (an older simtally wrote it): run `simtally lake migrate` on this \
         lake once (it rewrites the table in place, safely beside running writers)"
    )]
    OtherLayout {
        table: &'static str,
        found: Vec<String>,
        expected: &'static [&'static str],
    },
    #[error("table {table}: another writer committed after this one claimed it")]
    Fenced { table: &'static str },
    #[error("internal error (a bug in simtally): {0}")]
    Internal(String),
}

impl LakeError {
    /// Another writer committed to the same table, with the same fence (`fence`) or source
    /// positions, after this one read it: this work was decided on a read that is no longer
    /// current, so it must be dropped, and done again from a fresh read if at all.
    pub fn is_concurrent_commit(&self) -> bool {
        use deltalake::kernel::transaction::TransactionError;
        matches!(self, LakeError::Fenced { .. })
            || matches!(
                self,
                LakeError::Delta { cause, .. } if matches!(
                    cause.as_ref(),
                    DeltaTableError::Transaction { source: TransactionError::CommitConflict(_) }
                )
            )
    }
}

/// Commits between two checkpoints of a table simtally creates.
pub const CHECKPOINT_INTERVAL: u32 = 10;

/// A set of Delta tables under one root.
#[derive(Clone, Debug)]
pub struct Lake {
    location: LakeLocation,
}

impl Lake {
    pub fn new(location: LakeLocation) -> Self {
        Lake { location }
    }

    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    fn builder(&self, table: LakeTable) -> Result<DeltaTableBuilder, LakeError> {
        let url = self.location.table_url(table.name());
        let builder =
            DeltaTableBuilder::from_url(url.clone()).map_err(|e| self.delta_error(table, e))?;
        Ok(match self.location.shared_store() {
            Some(store) => builder.with_storage_backend(store, url),
            None => builder,
        })
    }

    pub(crate) fn delta_error(&self, table: LakeTable, source: DeltaTableError) -> LakeError {
        LakeError::Delta {
            table: table.name(),
            url: self.location.table_url(table.name()).to_string(),
            cause: Box::new(source),
        }
    }

    /// Opens a table, or `None` if it has never been written.
    pub async fn open(&self, table: LakeTable) -> Result<Option<DeltaTable>, LakeError> {
        if self.location.local_table_exists(table.name()) == Some(false) {
            return Ok(None);
        }
        let mut delta = self
            .builder(table)?
            .build()
            .map_err(|e| self.delta_error(table, e))?;
        match delta.load().await {
            Ok(()) => Ok(Some(delta)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(DeltaTableError::InvalidTableLocation(_)) => Ok(None),
            Err(e) => Err(self.delta_error(table, e)),
        }
    }

    /// Opens a table, creating it with simtally's schema if it does not exist yet.
    pub async fn open_or_create(&self, table: LakeTable) -> Result<DeltaTable, LakeError> {
        if let Some(existing) = self.open(table).await? {
            return Ok(existing);
        }
        self.location.prepare_table(table.name())?;
        let delta = self
            .builder(table)?
            .build()
            .map_err(|e| self.delta_error(table, e))?;
        let kernel_schema: StructType = table
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.delta_error(table, e.into()))?;
        delta
            .create()
            .with_table_name(table.name())
            .with_columns(kernel_schema.fields().cloned())
            .with_partition_columns(table.partition_columns().iter().copied())
            // Every writer opens its tables at each pass: with a checkpoint every 10 commits
            // (delta-rs's default is 100), opening one replays at most 9 JSON commits,
            // however long the lake has been written.
            .with_configuration_property(
                deltalake::TableProperty::CheckpointInterval,
                Some(CHECKPOINT_INTERVAL.to_string()),
            )
            .with_save_mode(deltalake::protocol::SaveMode::Ignore)
            .await
            .map_err(|e| self.delta_error(table, e))
    }

    /// Registers every existing table with a DataFusion session, under its own name.
    /// Returns the tables that exist.
    pub async fn register_tables(
        &self,
        ctx: &SessionContext,
        prefix: &str,
    ) -> Result<Vec<LakeTable>, LakeError> {
        let mut found = Vec::new();
        for table in LakeTable::ALL {
            let name = format!("{prefix}{}", table.name());
            if self.register_table(ctx, table, &name).await?.is_some() {
                found.push(table);
            }
        }
        Ok(found)
    }

    /// Registers the table's current version with a session under `name`; returns that
    /// version, or `None` (and registers nothing) if the table has never been written.
    pub async fn register_table(
        &self,
        ctx: &SessionContext,
        table: LakeTable,
        name: &str,
    ) -> Result<Option<i64>, LakeError> {
        let Some(delta) = self.open(table).await? else {
            return Ok(None);
        };
        register(ctx, name, &delta)
            .await
            .map_err(|e| self.delta_error(table, e))?;
        Ok(delta.version().map(|v| v as i64))
    }

    /// The value recorded under `key` in each commit of `table` that has one, oldest first.
    pub async fn commit_values(
        &self,
        table: LakeTable,
        key: &str,
    ) -> Result<Vec<serde_json::Value>, LakeError> {
        self.commit_values_of_last(table, key, None).await
    }

    /// The value under `key` in the commit info of the table's latest commit, if the table,
    /// the commit and the key are there.
    pub async fn latest_commit_value(
        &self,
        table: LakeTable,
        key: &str,
    ) -> Result<Option<serde_json::Value>, LakeError> {
        let latest = self.commit_values_of_last(table, key, Some(1)).await?;
        Ok(latest.into_iter().next())
    }

    /// As [`Self::commit_values`], over the last `limit` commits only (all if `None`).
    async fn commit_values_of_last(
        &self,
        table: LakeTable,
        key: &str,
        limit: Option<usize>,
    ) -> Result<Vec<serde_json::Value>, LakeError> {
        use futures::TryStreamExt;
        let Some(delta) = self.open(table).await? else {
            return Ok(Vec::new());
        };
        let mut commits: Vec<_> = delta
            .history(limit)
            .try_collect()
            .await
            .map_err(|e| self.delta_error(table, e))?;
        commits.sort_by_key(|c| c.read_version);
        Ok(commits
            .into_iter()
            .filter_map(|c| c.info.get(key).cloned())
            .collect())
    }

    /// Distinct values of an Int64 column, for idempotent re-ingest; `filter` is empty or a
    /// ` WHERE ...` clause. The column is streamed into the set: a `DISTINCT` query would
    /// hold DataFusion's own hash table of every key besides the result, and the whole
    /// result at once.
    pub async fn int64_keys<Keys: Default + Extend<i64>>(
        &self,
        table: LakeTable,
        column: &str,
        filter: &str,
    ) -> Result<Keys, LakeError> {
        let mut keys = Keys::default();
        let sql = format!("SELECT {column} FROM t{filter}");
        self.select_each(table, &sql, |batch| {
            let col = batch
                .column(0)
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| LakeError::Corrupt {
                    table: table.name(),
                    detail: format!("{column} is not BIGINT"),
                })?;
            match col.null_count() {
                0 => keys.extend(col.values().iter().copied()),
                _ => keys.extend(col.iter().flatten()),
            }
            Ok(())
        })
        .await?;
        Ok(keys)
    }

    /// The largest value of the DATE `column` over the table's files, from the statistics
    /// the Delta log holds: `Some(None)` if the table has no rows, `None` if a file has no
    /// such statistic (read the rows then).
    pub async fn logged_max_day(
        &self,
        table: LakeTable,
        column: &str,
    ) -> Result<Option<Option<i32>>, LakeError> {
        let Some(delta) = self.open(table).await? else {
            return Ok(Some(None));
        };
        let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let mut latest = None;
        for file in snapshot.log_data().iter() {
            if file.num_records() == Some(0) {
                continue;
            }
            let stats: Option<serde_json::Value> =
                file.stats().and_then(|s| serde_json::from_str(&s).ok());
            let day = stats
                .as_ref()
                .and_then(|s| s["maxValues"][column].as_str())
                .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .and_then(|d| i32::try_from((d - epoch).num_days()).ok());
            match day {
                Some(day) => latest = latest.max(Some(day)),
                None => return Ok(None),
            }
        }
        Ok(Some(latest))
    }

    /// Distinct values of a string column, for idempotent re-ingest (streamed, as above).
    pub async fn string_keys(
        &self,
        table: LakeTable,
        column: &str,
    ) -> Result<HashSet<String>, LakeError> {
        self.string_keys_starting(table, column, None).await
    }

    /// As [`Lake::string_keys`], only the values that start with one of `prefixes` (all
    /// values if `None`).
    pub async fn string_keys_starting(
        &self,
        table: LakeTable,
        column: &str,
        prefixes: Option<&[String]>,
    ) -> Result<HashSet<String>, LakeError> {
        let mut keys = HashSet::new();
        let condition = match prefixes {
            None => String::new(),
            Some([]) => return Ok(keys),
            Some(prefixes) => {
                let each: Vec<String> = prefixes
                    .iter()
                    .map(|p| format!("starts_with({column}, '{}')", p.replace('\'', "''")))
                    .collect();
                format!(" WHERE {}", each.join(" OR "))
            }
        };
        let sql = format!("SELECT CAST({column} AS VARCHAR) FROM t{condition}");
        self.select_each(table, &sql, |batch| {
            let values = utf8_column(batch, 0).map_err(|detail| LakeError::Corrupt {
                table: table.name(),
                detail,
            })?;
            for i in (0..values.len()).filter(|&i| values.is_valid(i)) {
                if !keys.contains(values.value(i)) {
                    keys.insert(values.value(i).to_owned());
                }
            }
            Ok(())
        })
        .await?;
        Ok(keys)
    }

    /// Runs `sql` against one table registered as `t`; empty if the table does not exist.
    pub async fn select(&self, table: LakeTable, sql: &str) -> Result<Vec<RecordBatch>, LakeError> {
        self.select_all(table, None, sql).await
    }

    /// Runs `sql` against one table registered as `t` and hands each batch of the result to
    /// `each` as it is produced; nothing if the table does not exist.
    pub async fn select_each(
        &self,
        table: LakeTable,
        sql: &str,
        each: impl FnMut(&RecordBatch) -> Result<(), LakeError>,
    ) -> Result<(), LakeError> {
        self.select_each_with(table, None, sql, each).await
    }

    /// Runs `sql` against one table registered as `t` and `keys` registered as the
    /// in-memory table `keys`: a semi-join on many keys scans the table once, where long
    /// `IN` lists would need a statement (and a scan) per slice of the list.
    pub async fn select_with_keys(
        &self,
        table: LakeTable,
        keys: RecordBatch,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        self.select_all(table, Some(keys), sql).await
    }

    async fn select_all(
        &self,
        table: LakeTable,
        keys: Option<RecordBatch>,
        sql: &str,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let mut batches = Vec::new();
        self.select_each_with(table, keys, sql, |batch| {
            batches.push(batch.clone());
            Ok(())
        })
        .await?;
        Ok(batches)
    }

    async fn select_each_with(
        &self,
        table: LakeTable,
        keys: Option<RecordBatch>,
        sql: &str,
        mut each: impl FnMut(&RecordBatch) -> Result<(), LakeError>,
    ) -> Result<(), LakeError> {
        use futures::StreamExt;
        let Some(delta) = self.open(table).await? else {
            return Ok(());
        };
        let ctx = SessionContext::new();
        register(&ctx, "t", &delta)
            .await
            .map_err(|e| self.delta_error(table, e))?;
        let read_error = |e| LakeError::Read {
            table: table.name(),
            cause: Box::new(e),
        };
        if let Some(keys) = keys {
            ctx.register_batch("keys", keys).map_err(read_error)?;
        }
        let mut stream = ctx
            .sql(sql)
            .await
            .map_err(read_error)?
            .execute_stream()
            .await
            .map_err(read_error)?;
        while let Some(batch) = stream.next().await {
            each(&batch.map_err(read_error)?)?;
        }
        Ok(())
    }

    /// The positions recorded under `app_ids` by the last commits to `table` that named them
    /// (Delta `txn` actions): where sources resume. Ids never recorded are left out.
    pub async fn resume_points(
        &self,
        table: LakeTable,
        app_ids: &[String],
    ) -> Result<HashMap<String, i64>, LakeError> {
        let mut found = HashMap::new();
        let Some(delta) = self.open(table).await? else {
            return Ok(found);
        };
        let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
        for app_id in app_ids {
            let version = snapshot
                .transaction_version(delta.log_store().as_ref(), app_id)
                .await
                .map_err(|e| self.delta_error(table, e))?;
            if let Some(version) = version {
                found.insert(app_id.clone(), version);
            }
        }
        Ok(found)
    }

    pub async fn appender(&self, table: LakeTable) -> Result<TableAppender, LakeError> {
        let delta = self.open_or_create(table).await?;
        let delta = self.with_new_columns(table, delta).await?;
        let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
        let found = snapshot.metadata().partition_columns();
        if !found.iter().eq(table.partition_columns()) {
            return Err(LakeError::OtherLayout {
                table: table.name(),
                found: found.to_vec(),
                expected: table.partition_columns(),
            });
        }
        TableAppender::new(table, delta).map_err(|e| self.delta_error(table, e))
    }
}

impl Lake {
    /// A table written by an older simtally lacks the columns added since (always
    /// nullable, always last): they are added before anything is written, in a commit of
    /// their own. Rows written before read them as NULL. Two writers adding them at once
    /// conflict like any two commits; the one that retries finds them there.
    async fn with_new_columns(
        &self,
        table: LakeTable,
        delta: DeltaTable,
    ) -> Result<DeltaTable, LakeError> {
        let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
        let existing = snapshot.schema();
        let wanted: StructType = table
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.delta_error(table, e.into()))?;
        let missing: Vec<_> = wanted
            .fields()
            .filter(|field| existing.field(field.name()).is_none())
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(delta);
        }
        if let Some(field) = missing.iter().find(|field| !field.is_nullable()) {
            return Err(LakeError::Corrupt {
                table: table.name(),
                detail: format!(
                    "column {} is missing and cannot be added (it may not be NULL)",
                    field.name()
                ),
            });
        }
        tracing::info!(table = table.name(), columns = ?missing.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "adding the columns this simtally writes");
        delta
            .add_columns()
            .with_fields(missing)
            .await
            .map_err(|e| self.delta_error(table, e))
    }
}

async fn register(
    ctx: &SessionContext,
    name: &str,
    delta: &DeltaTable,
) -> Result<(), DeltaTableError> {
    delta.update_datafusion_session(&ctx.state())?;
    let provider = delta
        .table_provider()
        .await
        .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
    ctx.register_table(name, provider)
        .map_err(|e| DeltaTableError::Generic(e.to_string()))?;
    Ok(())
}
