//! Clustered rewrites: `usage` and `quarantine` keep their rows in Workspace, day and ICCID
//! order, so that file, row-group and page statistics skip everything a query does not ask
//! for. An ingest writes each row group in that order; compaction merges the small files an
//! ingest leaves into large ones in that order across files; `lake migrate` rewrites a lake
//! written in an older layout (`usage` partitioned by `workspace_id`) in place.
//!
//! Both are commits like any writer's: compaction removes only the files it read and adds
//! their rows with no data change, so it never conflicts with ingests (which only add files);
//! two compactions of the same files conflict and the later one fails. A migration removes
//! every file, changes the table's metadata and records the writer fence's next pass number,
//! so a pass that read the old layout fails at its commit and starts again on the new one.

use arrow::array::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{col, ParquetReadOptions, SessionConfig, SessionContext};
use deltalake::kernel::Metadata;
use deltalake::DeltaTableError;
use futures::StreamExt;

use super::files::TARGET_FILE_BYTES;
use super::{Fence, Lake, LakeError, LakeTable, TableAppender, TableMaintenance, FENCE_APP_ID};

/// Files under this size are merged by compaction.
const SMALL_FILE_BYTES: i64 = TARGET_FILE_BYTES as i64 / 2;
/// At most this many bytes of small files are merged by one compaction (the rest next time),
/// so that one run's work stays bounded however far behind maintenance is.
const MOST_BYTES_PER_RUN: i64 = 2 * TARGET_FILE_BYTES as i64;
/// Rows gathered into one row group of a rewritten file.
const REWRITE_ROW_GROUP_ROWS: usize = 128 * 1024;
/// Memory a rewrite's sort may hold before it spills to disk.
const REWRITE_MEMORY_BYTES: usize = 512 * 1024 * 1024;

/// The order a table's rows are kept in, if it is clustered.
pub fn cluster_order(table: LakeTable) -> Option<&'static [&'static str]> {
    match table {
        LakeTable::Usage => Some(&["workspace_id", "usage_date", "iccid", "record_id", "slice"]),
        LakeTable::Quarantine => Some(&["usage_date", "iccid", "record_id", "slice"]),
        _ => None,
    }
}

/// A table's data file as its current version lists it.
#[derive(Clone, Debug)]
pub struct DataFile {
    pub path: String,
    pub size: i64,
    pub modified: i64,
}

impl Lake {
    /// Merges up to [`MOST_BYTES_PER_RUN`] of `table`'s small files, oldest first, into files
    /// of up to the target size, rows in `order`.
    pub(super) async fn cluster_small_files(
        &self,
        table: LakeTable,
        order: &[&str],
    ) -> Result<TableMaintenance, LakeError> {
        let appender = self.appender(table).await?;
        let mut small: Vec<DataFile> = appender
            .data_files()?
            .into_iter()
            .filter(|f| f.size < SMALL_FILE_BYTES)
            .collect();
        small.sort_by_key(|f| (f.modified, f.path.clone()));
        let mut bytes = 0;
        small.retain(|f| {
            bytes += f.size;
            bytes - f.size < MOST_BYTES_PER_RUN
        });
        let mut done = TableMaintenance {
            table: table.name(),
            ..TableMaintenance::default()
        };
        if small.len() < 2 {
            return Ok(done);
        }
        let paths: Vec<String> = small.into_iter().map(|f| f.path).collect();
        let ctx = rewrite_session(&appender)?;
        let urls: Vec<String> = paths
            .iter()
            .map(|p| appender.file_url(p))
            .collect::<Result<_, _>>()
            .map_err(|e| self.delta_error(table, e))?;
        let schema = table.schema();
        let frame = ctx
            .read_parquet(urls, ParquetReadOptions::default().schema(&schema))
            .await
            .map_err(|e| read_error(table, e))?;
        let mut appender = appender.one_file_at_a_time().flush_every(usize::MAX);
        write_sorted(&mut appender, table, frame, order).await?;
        appender.rewrite_files(&paths, None)?;
        let (_, added) = appender.commit_counted(Vec::new()).await?;
        done.files_removed = paths.len() as u64;
        done.files_added = added as u64;
        Ok(done)
    }

    /// Rewrites every table whose layout is not the one this simtally writes (see the
    /// module documentation); returns what was rewritten.
    pub async fn migrate(&self) -> Result<Vec<TableMaintenance>, LakeError> {
        let mut done = Vec::new();
        for table in LakeTable::ALL {
            let Some(delta) = self.open(table).await? else {
                continue;
            };
            let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
            let metadata = snapshot.metadata();
            if metadata
                .partition_columns()
                .iter()
                .eq(table.partition_columns())
            {
                continue;
            }
            let layout = relaid(metadata, table).map_err(|e| self.delta_error(table, e))?;
            let fence = self.next_pass().await?;
            let mut appender = TableAppender::new(table, delta)
                .map_err(|e| self.delta_error(table, e))?
                .one_file_at_a_time()
                .flush_every(usize::MAX);
            let paths: Vec<String> = appender.data_files()?.into_iter().map(|f| f.path).collect();
            let ctx = rewrite_session(&appender)?;
            appender.register_as(&ctx, "t").await?;
            let frame = ctx.table("t").await.map_err(|e| read_error(table, e))?;
            let order = cluster_order(table).unwrap_or_default();
            write_sorted(&mut appender, table, frame, order).await?;
            appender.rewrite_files(&paths, Some(layout))?;
            let txn = deltalake::kernel::Transaction::new(FENCE_APP_ID, fence);
            let (_, added) = appender.commit_counted(vec![txn]).await?;
            done.push(TableMaintenance {
                table: table.name(),
                files_removed: paths.len() as u64,
                files_added: added as u64,
            });
        }
        Ok(done)
    }

    /// The writer fence's next pass number, as a pass that read the lake now would number
    /// itself ([`Fence::pass`]).
    async fn next_pass(&self) -> Result<i64, LakeError> {
        let recorded = |table| async move {
            match self.open(table).await? {
                Some(delta) => {
                    TableAppender::new(table, delta)
                        .map_err(|e| self.delta_error(table, e))?
                        .recorded(FENCE_APP_ID)
                        .await
                }
                None => Ok(None),
            }
        };
        let fence = Fence {
            usage: recorded(LakeTable::Usage).await?,
            quarantine: recorded(LakeTable::Quarantine).await?,
        };
        Ok(fence.pass())
    }
}

/// The table's metadata with this simtally's partition columns.
fn relaid(metadata: &Metadata, table: LakeTable) -> Result<Metadata, DeltaTableError> {
    let mut value = serde_json::to_value(metadata)?;
    value["partitionColumns"] = serde_json::json!(table.partition_columns());
    Ok(serde_json::from_value(value)?)
}

/// A session for reading the files of the table `appender` writes: a bounded memory pool,
/// spilling sorts to disk, and the table's object store.
fn rewrite_session(appender: &TableAppender) -> Result<SessionContext, LakeError> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(REWRITE_MEMORY_BYTES, 1.0)
        .build_arc()
        .map_err(|e| read_error(appender.table(), e))?;
    // One sorted stream: two sorters sharing the pool each spill half as early, and their
    // merges (which cannot spill) then ran out of memory.
    let config = SessionConfig::new().with_target_partitions(1).set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    appender.prepare_session(&ctx)?;
    Ok(ctx)
}

/// Writes `frame`'s rows, in `order`, with the table's columns, in row groups of
/// [`REWRITE_ROW_GROUP_ROWS`].
async fn write_sorted(
    appender: &mut TableAppender,
    table: LakeTable,
    frame: datafusion::prelude::DataFrame,
    order: &[&str],
) -> Result<(), LakeError> {
    let schema = table.schema();
    let columns: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| {
            datafusion::prelude::cast(col(format!("\"{}\"", f.name())), f.data_type().clone())
                .alias(f.name())
        })
        .collect();
    let sorted = frame
        .select(columns)
        .and_then(|f| {
            f.sort(
                order
                    .iter()
                    .map(|c| col(format!("\"{c}\"")).sort(true, true))
                    .collect(),
            )
        })
        .map_err(|e| read_error(table, e))?;
    let mut stream = sorted
        .execute_stream()
        .await
        .map_err(|e| read_error(table, e))?;
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| read_error(table, e))?;
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
            .map_err(|e| read_error(table, e.into()))?;
        rows += batch.num_rows();
        pending.push(batch);
        if rows >= REWRITE_ROW_GROUP_ROWS {
            appender.write_pieces(std::mem::take(&mut pending)).await?;
            rows = 0;
        }
    }
    if !pending.is_empty() {
        appender.write_pieces(pending).await?;
    }
    Ok(())
}

fn read_error(table: LakeTable, e: datafusion::error::DataFusionError) -> LakeError {
    LakeError::Read {
        table: table.name(),
        cause: Box::new(e),
    }
}
