//! `simtally lake check`: the lake's invariants, each checked with SQL over the stored rows
//! (not over what a run reported), with the ids that break one.

use std::fmt;

use arrow::util::display::array_value_to_string;

use super::{open_session, run_sql, session_memory_bytes, QueryError, Scope};
use crate::lake::{Lake, LakeTable};
use crate::pipeline::RunLedger;

/// How many offending ids a failed check shows.
const SHOWN: usize = 20;

/// One invariant and what breaks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    /// The ids (record, event, source, file) that break it, at most [`SHOWN`], and how
    /// many there are in all.
    pub offending: Vec<String>,
    pub count: u64,
    /// What to do about it, when the check fails.
    pub remedy: &'static str,
}

/// Every check of one lake.
#[derive(Clone, Debug, Default)]
pub struct LakeCheck {
    pub checks: Vec<Check>,
}

impl LakeCheck {
    pub fn passes(&self) -> bool {
        self.checks.iter().all(|c| c.count == 0)
    }
}

impl fmt::Display for LakeCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match check.count {
                0 => writeln!(f, "ok    {}", check.name)?,
                n => {
                    writeln!(
                        f,
                        "FAIL  {} ({n}): {}",
                        check.name,
                        check.offending.join(", ")
                    )?;
                    writeln!(f, "      {}", check.remedy)?;
                }
            }
        }
        Ok(())
    }
}

/// A check as data: the table it needs, and a query whose rows are the offending ids. In a
/// check of the slice tables, `{t}` stands for `usage` and then for `quarantine`.
struct Invariant {
    name: &'static str,
    needs: Needs,
    sql: &'static str,
    remedy: &'static str,
}

enum Needs {
    /// Run once, if all these tables exist.
    All(&'static [LakeTable]),
    /// Run once for each of `usage` and `quarantine` that exists.
    EachSliceTable,
}

const REPAIR_BY_RERUN: &str = "a run was stopped between its commits (by a crash or by \
    another writer): run the same ingest again (for Kafka, start the ingest again), then \
    check again";
const NOT_SIMTALLY: &str = "the lake holds rows simtally did not write this way: restore the \
    table from a backup or its Delta history";

const RUN_RECORDS: &str = "if a run was stopped between its commits, run it again and check \
    again; otherwise rows were added or removed outside simtally: restore the table from a \
    backup or its Delta history";

const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "every {t} row (record, slice) stored once",
        needs: Needs::EachSliceTable,
        sql: "SELECT CAST(record_id AS VARCHAR) || '/' || CAST(slice AS VARCHAR) AS id FROM \
              (SELECT record_id, slice FROM {t}_ledger GROUP BY record_id, slice \
              HAVING COUNT(*) > 1) ORDER BY id",
        remedy: NOT_SIMTALLY,
    },
    Invariant {
        name: "every {t} reversal cancels a stored slice of the same amounts",
        needs: Needs::EachSliceTable,
        sql: "SELECT CAST(r.record_id AS VARCHAR) FROM {t}_ledger r \
              LEFT JOIN {t}_ledger s ON s.record_id = r.record_id \
              AND s.slice = r.reverses_slice AND s.reverses_slice IS NULL \
              AND s.cost = -r.cost AND s.volume_rx = -r.volume_rx AND s.volume_tx = -r.volume_tx \
              WHERE r.reverses_slice IS NOT NULL AND s.record_id IS NULL ORDER BY 1",
        remedy: NOT_SIMTALLY,
    },
    Invariant {
        name: "every record stored in {t} counts (some slice of it, in either table, is \
               neither reversed nor a reversal)",
        needs: Needs::EachSliceTable,
        sql: "SELECT CAST(record_id AS VARCHAR) FROM \
              (SELECT record_id FROM {t}_ledger EXCEPT ({counted})) ORDER BY 1",
        remedy: REPAIR_BY_RERUN,
    },
    Invariant {
        name: "no record's slice number in both usage and quarantine",
        needs: Needs::All(&[LakeTable::Usage, LakeTable::Quarantine]),
        sql: "SELECT DISTINCT CAST(u.record_id AS VARCHAR) FROM usage_ledger u \
              JOIN quarantine_ledger q ON u.record_id = q.record_id AND u.slice = q.slice \
              ORDER BY 1",
        remedy: NOT_SIMTALLY,
    },
    Invariant {
        name: "every SIM event stored once",
        needs: Needs::All(&[LakeTable::SimEvents]),
        sql: "SELECT event_id FROM sim_events GROUP BY event_id HAVING COUNT(*) > 1 ORDER BY 1",
        remedy: NOT_SIMTALLY,
    },
    Invariant {
        name: "every dead letter stored once",
        needs: Needs::All(&[LakeTable::DeadLetters]),
        sql: "SELECT source FROM dead_letters GROUP BY source HAVING COUNT(*) > 1 ORDER BY 1",
        remedy: NOT_SIMTALLY,
    },
];

/// Runs every invariant whose tables the lake has, then checks that every file the tables'
/// current versions name exists.
pub async fn check_lake(lake: &Lake) -> Result<LakeCheck, QueryError> {
    let ctx = open_session(lake, &Scope::default(), session_memory_bytes()).await?;
    let present = |table: LakeTable| ctx.table_exist(table.name()).unwrap_or(false);
    let slice_tables: Vec<&str> = [LakeTable::Usage, LakeTable::Quarantine]
        .into_iter()
        .filter(|t| present(*t))
        .map(LakeTable::name)
        .collect();
    let counted: Vec<String> = (slice_tables.iter())
        .map(|t| format!("SELECT record_id FROM {t}"))
        .collect();
    let counted = counted.join(" UNION ");
    let mut checks = Vec::new();
    for invariant in INVARIANTS {
        let tables = match invariant.needs {
            Needs::EachSliceTable => slice_tables.clone(),
            Needs::All(tables) if tables.iter().all(|t| present(*t)) => vec![tables[0].name()],
            Needs::All(_) => Vec::new(),
        };
        for table in tables {
            let sql = (invariant.sql.replace("{t}", table)).replace("{counted}", &counted);
            let (offending, count) = offending_ids(&ctx, &sql).await?;
            checks.push(Check {
                name: invariant.name.replace("{t}", table),
                offending,
                count,
                remedy: invariant.remedy,
            });
        }
    }
    checks.extend(run_records(lake, &ctx, &slice_tables).await?);
    let missing = lake.missing_files().await?;
    checks.push(Check {
        name: "every data file the tables name exists".to_owned(),
        count: missing.len() as u64,
        offending: missing.into_iter().take(SHOWN).collect(),
        remedy: "a file was deleted outside simtally (or vacuumed while a run still wrote it): \
                 restore it from a backup of the object store",
    });
    Ok(LakeCheck { checks })
}

/// The run records against the stored rows: every run accounted for each of its input
/// lines, the `usage` rows are those the runs wrote, and the distinct records stored in
/// `usage` and `quarantine` are those the runs stored.
async fn run_records(
    lake: &Lake,
    ctx: &datafusion::prelude::SessionContext,
    slice_tables: &[&str],
) -> Result<Vec<Check>, QueryError> {
    let ledger = RunLedger::read(lake).await?;
    let stored = |sql: String| async move {
        let (first, _) = offending_ids(ctx, &sql).await?;
        Ok::<u64, QueryError>(first.first().and_then(|n| n.parse().ok()).unwrap_or(0))
    };
    let usage_rows = match slice_tables.contains(&"usage") {
        true => stored("SELECT COUNT(*) FROM usage_ledger".to_owned()).await?,
        false => 0,
    };
    let records = match slice_tables.is_empty() {
        true => 0,
        false => {
            let ids: Vec<String> = (slice_tables.iter())
                .map(|t| format!("SELECT record_id FROM {t}_ledger"))
                .collect();
            let sql = format!(
                "SELECT COUNT(DISTINCT record_id) FROM ({})",
                ids.join(" UNION ALL ")
            );
            stored(sql).await?
        }
    };
    let unconserved = ledger.unconserved() as u64;
    let compared = [
        (
            "every ingest run accounted for each of its input lines",
            ledger.runs.len() as u64 - unconserved,
            ledger.runs.len() as u64,
        ),
        (
            "usage rows = the rows the ingest runs wrote",
            usage_rows,
            ledger.sum(|r| r.written_usage),
        ),
        (
            "records stored (attributed or quarantined) = the records the runs stored",
            records,
            ledger.records_in_lake(),
        ),
    ];
    Ok(compared
        .into_iter()
        .map(|(name, found, recorded)| Check {
            name: name.to_owned(),
            count: found.abs_diff(recorded),
            offending: match found == recorded {
                true => Vec::new(),
                false => vec![format!(
                    "the lake holds {found}, the run records say {recorded}"
                )],
            },
            remedy: RUN_RECORDS,
        })
        .collect())
}

/// The first column of each row `sql` gives (at most [`SHOWN`]), and how many rows.
async fn offending_ids(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> Result<(Vec<String>, u64), QueryError> {
    let batches = run_sql(ctx, sql).await?;
    let mut offending = Vec::new();
    let mut count = 0;
    for batch in &batches {
        for row in 0..batch.num_rows() {
            count += 1;
            if offending.len() < SHOWN {
                let id = array_value_to_string(batch.column(0), row)
                    .unwrap_or_else(|e| format!("(unreadable: {e})"));
                offending.push(id);
            }
        }
    }
    Ok((offending, count))
}
