//! Keeping a lake in shape: `compact` merges small data files, `vacuum` deletes files no
//! longer referenced. Both go through delta-rs's own operations, so they commit like any
//! other writer: compaction marks its commit as no data change (readers, sums and the
//! recorded Kafka positions see the same rows), and vacuum only touches unreferenced files.

use std::num::NonZeroU64;
use std::time::Duration;

use deltalake::operations::vacuum::VacuumMode;
use deltalake::parquet::file::properties::WriterProperties;
use object_store::ObjectStoreExt;

use super::appender::zstd;
use super::crash::{CommitPoint, WritePath};
use super::files::TARGET_FILE_BYTES;
use super::{cluster_order, Lake, LakeError, LakeTable};

/// What `lake maintain` did.
#[derive(Clone, Debug, Default)]
pub struct Maintained {
    pub compacted: Vec<TableMaintenance>,
    /// Tables given a checkpoint at their latest version.
    pub checkpointed: Vec<&'static str>,
    pub vacuumed: Vec<TableMaintenance>,
}

/// What one maintenance step did to one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableMaintenance {
    pub table: &'static str,
    pub files_removed: u64,
    pub files_added: u64,
}

impl Lake {
    /// Merges each table's small files: `usage` and `quarantine` into large files in their
    /// clustered order (`cluster.rs`), the others partition by partition. Tables that do not
    /// exist yet are skipped.
    pub async fn compact(&self) -> Result<Vec<TableMaintenance>, LakeError> {
        let props = WriterProperties::builder().set_compression(zstd()).build();
        // Compacted files aim at the size the ingest rolls its files at.
        let target = NonZeroU64::new(TARGET_FILE_BYTES as u64).unwrap_or(NonZeroU64::MIN);
        let mut done = Vec::new();
        for table in LakeTable::ALL {
            let Some(delta) = self.open(table).await? else {
                continue;
            };
            if let Some(order) = cluster_order(table) {
                done.push(self.cluster_small_files(table, order).await?);
                CommitPoint::new(WritePath::Compact, table.name()).passed();
                continue;
            }
            let (_, metrics) = delta
                .optimize()
                .with_target_size(target)
                .with_writer_properties(props.clone())
                .await
                .map_err(|e| self.delta_error(table, e))?;
            CommitPoint::new(WritePath::Compact, table.name()).passed();
            done.push(TableMaintenance {
                table: table.name(),
                files_removed: metrics.num_files_removed,
                files_added: metrics.num_files_added,
            });
        }
        self.found(done)
    }

    /// What a scheduler runs: compaction, then a checkpoint of every table whose log has
    /// commits after its last one (opening a table then reads the checkpoint and the few
    /// commits after it), then vacuum with `retain`.
    pub async fn maintain(&self, retain: Duration) -> Result<Maintained, LakeError> {
        let compacted = self.compact().await?;
        let mut checkpointed = Vec::new();
        for table in LakeTable::ALL {
            let Some(delta) = self.open(table).await? else {
                continue;
            };
            let version = delta.version().unwrap_or_default() as i64;
            if last_checkpoint(&delta)
                .await
                .is_some_and(|at| at >= version)
            {
                continue;
            }
            deltalake::checkpoints::create_checkpoint(&delta, None)
                .await
                .map_err(|e| self.delta_error(table, e))?;
            checkpointed.push(table.name());
        }
        let vacuumed = self.vacuum(retain, false).await?;
        Ok(Maintained {
            compacted,
            checkpointed,
            vacuumed,
        })
    }

    /// Deletes data files the tables no longer reference, once unreferenced for `retain`
    /// (compaction and interrupted runs leave such files). With `dry_run`, only counts them.
    pub async fn vacuum(
        &self,
        retain: Duration,
        dry_run: bool,
    ) -> Result<Vec<TableMaintenance>, LakeError> {
        let mut done = Vec::new();
        for table in LakeTable::ALL {
            let Some(delta) = self.open(table).await? else {
                continue;
            };
            let retention = chrono::Duration::from_std(retain).unwrap_or(chrono::Duration::MAX);
            let (_, metrics) = delta
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(false)
                // Also files that no commit ever named (runs killed or refused before their
                // commit): they are deleted once older than the retention, like the rest.
                .with_mode(VacuumMode::Full)
                .with_dry_run(dry_run)
                .await
                .map_err(|e| self.delta_error(table, e))?;
            done.push(TableMaintenance {
                table: table.name(),
                files_removed: metrics.files_deleted.len() as u64,
                files_added: 0,
            });
        }
        self.found(done)
    }

    /// The data files the tables' current versions name that the store does not have, as
    /// `table/path`.
    pub async fn missing_files(&self) -> Result<Vec<String>, LakeError> {
        let mut missing = Vec::new();
        for table in LakeTable::ALL {
            let Some(delta) = self.open(table).await? else {
                continue;
            };
            let snapshot = delta.snapshot().map_err(|e| self.delta_error(table, e))?;
            let store = delta.object_store();
            for file in snapshot.log_data().iter() {
                let path = file.object_store_path();
                match store.head(&path).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => {
                        missing.push(format!("{}/{}", table.name(), file.path()))
                    }
                    Err(e) => return Err(self.delta_error(table, e.into())),
                }
            }
        }
        Ok(missing)
    }

    /// A lake without any table is most likely a wrong `--lake`: say so.
    fn found(&self, done: Vec<TableMaintenance>) -> Result<Vec<TableMaintenance>, LakeError> {
        if done.is_empty() {
            return Err(LakeError::NotFound(self.location().to_string()));
        }
        Ok(done)
    }
}

/// The version of the table's last checkpoint, as `_delta_log/_last_checkpoint` says (none if
/// it has none, or cannot be read: a checkpoint is then written again).
async fn last_checkpoint(delta: &deltalake::DeltaTable) -> Option<i64> {
    let path = object_store::path::Path::from("_delta_log/_last_checkpoint");
    let found = delta.object_store().get(&path).await.ok()?;
    let bytes = found.bytes().await.ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["version"].as_i64()
}
