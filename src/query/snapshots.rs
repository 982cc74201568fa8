//! The lake as a server sees it: per table, the loaded Delta table and a DataFusion provider
//! for its version, and the directory built from the `workspaces` and `memberships` tables.
//!
//! A query that starts after a commit sees it: each read checks the table's log, unless a
//! check that began after this read was asked for has already done so (concurrent queries
//! share one check). A check reads only the commits added since the cached version; the
//! provider and the directory are rebuilt only when the version moves. So a report costs one
//! listing of the log's tail per table instead of replaying the log, and a revoked role still
//! applies to the next query.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::{DeltaTable, DeltaTableError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::directory::{load_directory, Directory, LinkLimits};
use crate::lake::{Lake, LakeError, LakeTable};

/// One table's version and a provider that reads exactly that version.
#[derive(Clone)]
pub struct TableVersion {
    pub version: i64,
    pub provider: Arc<dyn TableProvider>,
}

#[derive(Default)]
struct CachedTable {
    delta: Option<DeltaTable>,
    current: Option<TableVersion>,
    /// When the last check of the log began.
    checked: Option<Instant>,
}

/// Versions of (`workspaces`, `memberships`) a directory was built from.
type DirectoryKey = (Option<i64>, Option<i64>);

/// The cached lake of one server; see the module documentation.
pub struct LakeSnapshots {
    lake: Lake,
    runtime: Arc<RuntimeEnv>,
    tables: BTreeMap<&'static str, Mutex<CachedTable>>,
    directory: Mutex<Option<(DirectoryKey, Arc<Directory>)>>,
}

impl std::fmt::Debug for LakeSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LakeSnapshots({:?})", self.lake.location())
    }
}

impl LakeSnapshots {
    /// Nothing is read until a query asks.
    pub fn new(lake: Lake, runtime: Arc<RuntimeEnv>) -> Arc<LakeSnapshots> {
        let tables = LakeTable::ALL
            .into_iter()
            .map(|t| (t.name(), Mutex::new(CachedTable::default())))
            .collect();
        Arc::new(LakeSnapshots {
            lake,
            runtime,
            tables,
            directory: Mutex::new(None),
        })
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The runtime (memory pool, object stores) every session over these tables shares.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.clone()
    }

    /// `table` at its latest version committed before this call, or `None` if it has never
    /// been written.
    pub async fn table(&self, table: LakeTable) -> Result<Option<TableVersion>, LakeError> {
        let asked = Instant::now();
        let Some(slot) = self.tables.get(table.name()) else {
            return Err(LakeError::Corrupt {
                table: table.name(),
                detail: "not a table the server caches".into(),
            });
        };
        let mut cached = slot.lock().await;
        if cached.checked.is_some_and(|checked| checked >= asked) {
            return Ok(cached.current.clone());
        }
        let began = Instant::now();
        let refreshed = self.refresh(table, &mut cached).await;
        if refreshed.is_err() {
            // Start again from the log next time rather than trust a half-updated state.
            *cached = CachedTable::default();
        } else {
            cached.checked = Some(began);
        }
        refreshed?;
        Ok(cached.current.clone())
    }

    async fn refresh(&self, table: LakeTable, cached: &mut CachedTable) -> Result<(), LakeError> {
        match cached.delta.as_mut() {
            Some(delta) => delta
                .update_incremental(None)
                .await
                .map_err(|e| self.lake.delta_error(table, e))?,
            None => cached.delta = self.lake.open(table).await?,
        }
        let Some(delta) = cached.delta.as_ref() else {
            return Ok(());
        };
        let version = delta.version().map_or(-1, |v| v as i64);
        if cached
            .current
            .as_ref()
            .is_some_and(|c| c.version == version)
        {
            return Ok(());
        }
        let session = SessionContext::new_with_config_rt(SessionConfig::new(), self.runtime());
        delta
            .update_datafusion_session(&session.state())
            .map_err(|e| self.lake.delta_error(table, e))?;
        let provider = delta.table_provider().await.map_err(|e| {
            self.lake
                .delta_error(table, DeltaTableError::Generic(e.to_string()))
        })?;
        cached.current = Some(TableVersion { version, provider });
        Ok(())
    }

    /// The directory as of the latest `workspaces` and `memberships` versions.
    pub async fn directory(&self) -> Result<Arc<Directory>, LakeError> {
        let version = |t: Option<TableVersion>| t.map(|t| t.version);
        let key = (
            version(self.table(LakeTable::Workspaces).await?),
            version(self.table(LakeTable::Memberships).await?),
        );
        let mut cached = self.directory.lock().await;
        if let Some((built_from, directory)) = cached.as_ref() {
            if *built_from == key {
                return Ok(directory.clone());
            }
        }
        // Read at least `key`'s versions; a newer commit read here is caught by the next
        // call's key.
        let directory = Arc::new(
            load_directory(&self.lake, LinkLimits::unbounded())
                .await?
                .directory,
        );
        *cached = Some((key, directory.clone()));
        Ok(directory)
    }
}
