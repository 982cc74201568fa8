use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use chrono::NaiveDate;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{QueryError, Report};
use crate::domain::WorkspaceId;
use crate::lake::schema::{counted_slices_sql, OWNERSHIP_VIEW_SQL};
use crate::lake::{Lake, LakeError, LakeTable};

/// Which part of the lake a query sees: some Workspaces (all when empty) and a date range
/// of `usage_date`, both ends inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub workspaces: Vec<WorkspaceId>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Scope {
    /// ` AND ...` conditions on `usage_date`, or nothing.
    pub(super) fn date_condition(&self) -> String {
        let mut out = String::new();
        if let Some(from) = self.from {
            out.push_str(&format!(" AND usage_date >= DATE '{from}'"));
        }
        if let Some(to) = self.to {
            out.push_str(&format!(" AND usage_date <= DATE '{to}'"));
        }
        out
    }

    fn usage_filter(&self) -> String {
        let workspaces = match self.workspaces.is_empty() {
            true => "TRUE".to_owned(),
            false => {
                let ids: Vec<String> = self
                    .workspaces
                    .iter()
                    .map(|w| w.get().to_string())
                    .collect();
                format!("workspace_id IN ({})", ids.join(", "))
            }
        };
        format!(" WHERE {workspaces}{}", self.date_condition())
    }
}

/// Memory one session's sorts, joins and aggregates may hold by default before they spill
/// to the temporary directory, or fail with a resources-exhausted error: 80 % of what the
/// process may use (the machine's memory, or its cgroup's limit if lower), as DuckDB does.
/// One operator's query has the machine to itself; a bound still turns a query that would
/// not fit into an error instead of the kernel's out-of-memory kill. 1 GiB when neither
/// can be read.
pub fn session_memory_bytes() -> usize {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    // cgroup v2, then v1.
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
    memory_share(read("/proc/meminfo").as_deref(), cgroup.as_deref())
}

/// 80 % of the smaller of `/proc/meminfo`'s MemTotal and a cgroup limit ("max", or a huge
/// number, when there is none); 1 GiB when neither says.
fn memory_share(meminfo: Option<&str>, cgroup: Option<&str>) -> usize {
    let machine = meminfo.and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    let cgroup = cgroup.and_then(|text| text.trim().parse::<u64>().ok());
    let limit = match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (one, other) => match one.or(other) {
            Some(bytes) => bytes,
            None => return 1 << 30,
        },
    };
    usize::try_from(limit / 5 * 4).unwrap_or(usize::MAX)
}

/// A session in which `usage`, `sim_events`, `ownership` (and, unscoped, `quarantine` and
/// `dead_letters`) are views over the lake, limited to `scope`. `usage` and `quarantine`
/// show the slices that count; `usage_ledger` and `quarantine_ledger` every stored row,
/// correction reversals included.
pub async fn open_session(
    lake: &Lake,
    scope: &Scope,
    memory_bytes: usize,
) -> Result<SessionContext, QueryError> {
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(memory_bytes, 1.0)
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
    let found = lake.register_tables(&ctx, "raw_").await?;
    if found.is_empty() {
        return Err(LakeError::NotFound(lake.location().to_string()).into());
    }
    // A table not written yet (invoices before the first issue) is there, empty.
    for table in LakeTable::ALL.into_iter().filter(|t| !found.contains(t)) {
        let schema = table.schema();
        let empty = datafusion::datasource::MemTable::try_new(schema, vec![vec![]])?;
        ctx.register_table(format!("raw_{}", table.name()), Arc::new(empty))?;
    }
    for table in LakeTable::ALL {
        let name = table.name();
        let filter = match table {
            LakeTable::Usage => scope.usage_filter(),
            _ => String::new(),
        };
        match table {
            LakeTable::Usage | LakeTable::Quarantine => {
                let counted = counted_slices_sql(&format!("raw_{name}"));
                ctx.sql(&format!(
                    "CREATE VIEW {name} AS SELECT counted.* FROM {counted}{filter}"
                ))
                .await?;
                ctx.sql(&format!(
                    "CREATE VIEW {name}_ledger AS SELECT * FROM raw_{name}{filter}"
                ))
                .await?;
            }
            _ => {
                ctx.sql(&format!(
                    "CREATE VIEW {name} AS SELECT * FROM raw_{name}{filter}"
                ))
                .await?;
            }
        }
        if table == LakeTable::SimEvents {
            ctx.sql(&format!("CREATE VIEW ownership AS {OWNERSHIP_VIEW_SQL}"))
                .await?;
        }
    }
    Ok(ctx)
}

pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

/// Runs a named report over `scope`, checking first that the scope suits the report.
pub async fn run_report(
    lake: &Lake,
    report: &Report,
    scope: &Scope,
    memory_bytes: usize,
) -> Result<Vec<RecordBatch>, QueryError> {
    let mut scope = scope.clone();
    let needed = report.min_workspaces();
    if needed > 1 {
        if scope.workspaces.is_empty() {
            scope.workspaces = workspaces_in_lake(lake).await?;
        }
        if scope.workspaces.len() < needed {
            return Err(QueryError::Scope(format!(
                "report '{}' combines {needed} or more Workspaces; {} given or found in the lake",
                report.name,
                scope.workspaces.len()
            )));
        }
    }
    let ctx = open_session(lake, &scope, memory_bytes).await?;
    run_sql(&ctx, report.sql).await
}

async fn workspaces_in_lake(lake: &Lake) -> Result<Vec<WorkspaceId>, QueryError> {
    let batches = lake
        .select(
            LakeTable::Usage,
            "SELECT DISTINCT workspace_id FROM t ORDER BY workspace_id",
        )
        .await?;
    Ok(batches
        .iter()
        .filter_map(|b| b.column(0).as_primitive_opt::<Int64Type>())
        .flat_map(|col| col.iter().flatten())
        .filter_map(WorkspaceId::new)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::memory_share;

    #[test]
    fn the_default_memory_is_a_share_of_the_machine_or_its_cgroup() {
        let meminfo = "MemTotal:       25165824 kB\nMemFree:        1000 kB\n";
        let gib = 1usize << 30;
        assert_eq!(memory_share(Some(meminfo), None), 24 * gib / 5 * 4);
        assert_eq!(memory_share(Some(meminfo), Some("max\n")), 24 * gib / 5 * 4);
        assert_eq!(
            memory_share(Some(meminfo), Some("9223372036854771712\n")),
            24 * gib / 5 * 4
        );
        assert_eq!(
            memory_share(Some(meminfo), Some("4294967296\n")),
            4 * gib / 5 * 4
        );
        assert_eq!(memory_share(None, Some("4294967296")), 4 * gib / 5 * 4);
        assert_eq!(memory_share(Some("garbage"), None), gib);
        assert_eq!(memory_share(None, None), gib);
    }
}
