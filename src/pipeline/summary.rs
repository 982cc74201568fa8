use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::CorrectionCounts;
use crate::domain::{Costs, Volume};
use crate::lake::{Lake, LakeError, LakeTable};

/// Per Workspace: distinct records with a slice there, slices, and exact sums.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceTotals {
    pub records: u64,
    pub slices: u64,
    pub volume_total: Volume,
    pub cost: Costs,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuarantineTotals {
    pub slices: u64,
    pub volume_total: Volume,
    pub cost: Costs,
}

/// Where every usage line went. `lines = blank + records + duplicates + dead_letters`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageCounts {
    pub lines: u64,
    pub blank: u64,
    /// Valid records seen for the first time and written.
    pub records: u64,
    /// Re-deliveries of an id seen earlier in this run or already in the lake.
    pub duplicates: u64,
    /// Of `records`: those whose rows are all in `quarantine` (counted by the `quarantine`
    /// commit too, so a pass stopped before its `usage` commit still accounts for them).
    pub quarantine_only: u64,
    /// Of `duplicates`: those whose id is already in the lake from an earlier run.
    pub already_in_lake: u64,
    /// Of `duplicates`: those with different content than the first (also dead letters).
    pub conflicting_duplicates: u64,
    /// Lines that are not valid usage records.
    pub dead_letters: u64,
    pub slices_attributed: u64,
    pub total_volume: Volume,
    pub total_cost: Costs,
    /// Messages read but held for the lifecycle events (a follower; see
    /// [`super::hold`]): not in `lines`, as the next pass reads them again. Over several
    /// passes, those the last one held.
    pub held: u64,
}

impl UsageCounts {
    fn absorb(&mut self, pass: &UsageCounts) {
        self.lines += pass.lines;
        self.blank += pass.blank;
        self.records += pass.records;
        self.duplicates += pass.duplicates;
        self.quarantine_only += pass.quarantine_only;
        self.already_in_lake += pass.already_in_lake;
        self.conflicting_duplicates += pass.conflicting_duplicates;
        self.dead_letters += pass.dead_letters;
        self.slices_attributed += pass.slices_attributed;
        self.total_volume += pass.total_volume;
        self.total_cost.absorb(&pass.total_cost);
        self.held = pass.held;
    }

    /// Every non-blank line is accounted for exactly once.
    pub fn is_conserved(&self) -> bool {
        self.lines == self.blank + self.records + self.duplicates + self.dead_letters
    }
}

/// Where every event line went. `lines = blank + accepted + duplicates + dead_letters`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub lines: u64,
    pub blank: u64,
    pub accepted: u64,
    /// Of `accepted`, the directory events (Workspaces, links, roles).
    pub directory: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

impl EventCounts {
    fn absorb(&mut self, pass: &EventCounts) {
        self.lines += pass.lines;
        self.blank += pass.blank;
        self.accepted += pass.accepted;
        self.directory += pass.directory;
        self.duplicates += pass.duplicates;
        self.dead_letters += pass.dead_letters;
    }

    pub fn is_conserved(&self) -> bool {
        self.lines == self.blank + self.accepted + self.duplicates + self.dead_letters
    }
}

/// The key of [`RunRecord`] in the `commitInfo` of a run's `usage` commit.
pub const RUN_RECORD_KEY: &str = "simtally.run";

/// The key, in the `commitInfo` of a pass's `quarantine` commit, of how many records it
/// stored in `quarantine` only: they are accounted for even if the pass stops before its
/// `usage` commit (which holds the [`RunRecord`]), and the run after it counts them as
/// already in the lake.
pub const QUARANTINE_RECORDS_KEY: &str = "simtally.quarantine_records";

/// What one ingest run read and wrote, stored with its `usage` commit so that
/// `simtally reconcile` can check the lake against every run that built it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub usage_lines: u64,
    pub usage_blank: u64,
    pub records: u64,
    pub duplicates: u64,
    pub usage_dead_letters: u64,
    pub event_lines: u64,
    pub event_blank: u64,
    pub events_accepted: u64,
    pub event_duplicates: u64,
    pub event_dead_letters: u64,
    /// Rows this run added to each table.
    pub written_usage: u64,
    pub written_quarantine: u64,
    pub written_dead_letters: u64,
    pub written_sim_events: u64,
    #[serde(default)]
    pub written_workspaces: u64,
    #[serde(default)]
    pub written_memberships: u64,
    /// Stored records this run re-attributed, and the rows (of `written_usage` and
    /// `written_quarantine`) that did it.
    #[serde(default)]
    pub corrected_records: u64,
    #[serde(default)]
    pub correction_rows: u64,
    /// Of `records`: those stored in `quarantine` only, which the run's `quarantine` commit
    /// also records under [`QUARANTINE_RECORDS_KEY`].
    #[serde(default)]
    pub quarantine_only: u64,
}

impl RunRecord {
    /// `written`: the rows the run added to a table.
    pub fn new(summary: &RunSummary, written: impl Fn(LakeTable) -> u64) -> Self {
        let (u, e) = (&summary.usage, &summary.events);
        RunRecord {
            usage_lines: u.lines,
            usage_blank: u.blank,
            records: u.records,
            duplicates: u.duplicates,
            usage_dead_letters: u.dead_letters,
            event_lines: e.lines,
            event_blank: e.blank,
            events_accepted: e.accepted,
            event_duplicates: e.duplicates,
            event_dead_letters: e.dead_letters,
            written_usage: written(LakeTable::Usage),
            written_quarantine: written(LakeTable::Quarantine),
            written_dead_letters: written(LakeTable::DeadLetters),
            written_sim_events: written(LakeTable::SimEvents),
            written_workspaces: written(LakeTable::Workspaces),
            written_memberships: written(LakeTable::Memberships),
            corrected_records: summary.corrections.records,
            correction_rows: summary.corrections.rows,
            quarantine_only: u.quarantine_only,
        }
    }

    pub fn wrote_something(&self) -> bool {
        self.written_usage
            + self.written_quarantine
            + self.written_dead_letters
            + self.written_sim_events
            + self.written_workspaces
            + self.written_memberships
            > 0
    }

    /// Every input line of the run is accounted for once.
    pub fn is_conserved(&self) -> bool {
        self.usage_lines
            == self.usage_blank + self.records + self.duplicates + self.usage_dead_letters
            && self.event_lines
                == self.event_blank
                    + self.events_accepted
                    + self.event_duplicates
                    + self.event_dead_letters
    }
}

/// What the run records of a lake say it holds: every run's [`RunRecord`], and the records
/// the `quarantine` commits stored in quarantine only (which stand even when their pass
/// stopped before its `usage` commit).
#[derive(Clone, Debug, Default)]
pub struct RunLedger {
    pub runs: Vec<RunRecord>,
    pub quarantined_by_commits: u64,
}

impl RunLedger {
    pub async fn read(lake: &Lake) -> Result<Self, LakeError> {
        let mut runs = Vec::new();
        for value in lake.commit_values(LakeTable::Usage, RUN_RECORD_KEY).await? {
            runs.push(
                serde_json::from_value(value).map_err(|e| LakeError::Corrupt {
                    table: LakeTable::Usage.name(),
                    detail: format!("a run record: {e}"),
                })?,
            );
        }
        let quarantined = lake
            .commit_values(LakeTable::Quarantine, QUARANTINE_RECORDS_KEY)
            .await?;
        Ok(RunLedger {
            runs,
            quarantined_by_commits: quarantined.iter().filter_map(|v| v.as_u64()).sum(),
        })
    }

    pub fn sum(&self, pick: fn(&RunRecord) -> u64) -> u64 {
        self.runs.iter().map(pick).sum()
    }

    /// Runs whose input lines are not all accounted for.
    pub fn unconserved(&self) -> usize {
        self.runs.iter().filter(|r| !r.is_conserved()).count()
    }

    /// Distinct records the runs stored, attributed or quarantined.
    pub fn records_in_lake(&self) -> u64 {
        self.sum(|r| r.records) - self.sum(|r| r.quarantine_only) + self.quarantined_by_commits
    }
}

/// What an ingest run did, accounting for every input line.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    pub usage: UsageCounts,
    pub events: EventCounts,
    /// Rows written to correct usage stored by earlier runs (late transfers, registrations).
    pub corrections: CorrectionCounts,
    /// Dead letters that could not be sent to the dead-letter topic (they are in the table).
    pub unsent_dead_letters: u64,
    pub workspaces: BTreeMap<i64, WorkspaceTotals>,
    pub quarantine: BTreeMap<&'static str, QuarantineTotals>,
    pub lake_versions: Vec<(&'static str, i64)>,
    pub elapsed: Duration,
    /// Whether a follower's SIM events kept from its last pass were loaded again because
    /// another writer stored events since.
    pub sim_events_reloaded: bool,
}

impl RunSummary {
    /// Adds a later pass of the same run: counts and totals add up, the lake versions are
    /// the latest.
    pub fn absorb(&mut self, pass: RunSummary) {
        self.usage.absorb(&pass.usage);
        self.events.absorb(&pass.events);
        self.corrections.records += pass.corrections.records;
        self.corrections.rows += pass.corrections.rows;
        self.unsent_dead_letters += pass.unsent_dead_letters;
        self.sim_events_reloaded |= pass.sim_events_reloaded;
        for (workspace, totals) in pass.workspaces {
            let sum = self.workspaces.entry(workspace).or_default();
            sum.records += totals.records;
            sum.slices += totals.slices;
            sum.volume_total += totals.volume_total;
            sum.cost.absorb(&totals.cost);
        }
        for (reason, totals) in pass.quarantine {
            let sum = self.quarantine.entry(reason).or_default();
            sum.slices += totals.slices;
            sum.volume_total += totals.volume_total;
            sum.cost.absorb(&totals.cost);
        }
        for (table, version) in pass.lake_versions {
            match self.lake_versions.iter_mut().find(|(t, _)| *t == table) {
                Some(latest) => latest.1 = version,
                None => self.lake_versions.push((table, version)),
            }
        }
        self.elapsed += pass.elapsed;
    }
}

impl RunSummary {
    /// The table of Workspaces and quarantine reasons under the totals.
    fn write_workspaces(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "\n{:>12} {:>10} {:>10} {:>22} {:>22}",
            "workspace", "records", "slices", "volume", "cost"
        )?;
        for (ws, t) in &self.workspaces {
            writeln!(
                f,
                "{:>12} {:>10} {:>10} {:>22} {:>22}",
                ws,
                t.records,
                t.slices,
                t.volume_total.to_string(),
                t.cost.to_string()
            )?;
        }
        for (reason, q) in &self.quarantine {
            writeln!(
                f,
                "{:>12} {:>10} {:>10} {:>22} {:>22}",
                format!("[{reason}]"),
                "",
                q.slices,
                q.volume_total.to_string(),
                q.cost.to_string()
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.usage;
        writeln!(f, "usage lines      {:>12}", u.lines)?;
        writeln!(f, "  blank          {:>12}", u.blank)?;
        writeln!(
            f,
            "  records        {:>12}  ({} slices attributed, {} quarantined)",
            u.records,
            u.slices_attributed,
            self.quarantine.values().map(|q| q.slices).sum::<u64>()
        )?;
        writeln!(
            f,
            "  duplicates     {:>12}  ({} already in the lake, {} conflicting)",
            u.duplicates, u.already_in_lake, u.conflicting_duplicates
        )?;
        writeln!(f, "  dead letters   {:>12}", u.dead_letters)?;
        if u.held > 0 {
            writeln!(
                f,
                "  held           {:>12}  (waiting for the events; read again next pass)",
                u.held
            )?;
        }
        writeln!(
            f,
            "  accounted for  {:>12}",
            if u.is_conserved() { "yes" } else { "NO" }
        )?;
        let e = &self.events;
        writeln!(
            f,
            "event lines      {:>12}  ({} accepted, of which {} directory; {} duplicates, {} dead letters, {} blank)",
            e.lines, e.accepted, e.directory, e.duplicates, e.dead_letters, e.blank
        )?;
        if self.corrections.records > 0 {
            writeln!(
                f,
                "corrections      {:>12}  stored records re-attributed ({} rows: reversals and new slices)",
                self.corrections.records, self.corrections.rows
            )?;
        }
        writeln!(f, "volume           {:>24}", u.total_volume.to_string())?;
        writeln!(f, "cost             {:>24}", u.total_cost.to_string())?;
        if !self.workspaces.is_empty() {
            self.write_workspaces(f)?;
        }
        write!(f, "\ndone in {:.2}s", self.elapsed.as_secs_f64())?;
        if !self.lake_versions.is_empty() {
            let versions: Vec<String> = self
                .lake_versions
                .iter()
                .map(|(t, v)| format!("{t}@v{v}"))
                .collect();
            write!(f, "; committed {}", versions.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money};

    #[test]
    fn a_summary_shows_costs_per_currency_never_added() {
        let (eur, usd) = (
            Currency::parse("EUR").unwrap(),
            Currency::parse("USD").unwrap(),
        );
        let mut pass = RunSummary::default();
        pass.usage.total_cost.add(eur, Money::parse("1").unwrap());
        pass.usage.total_cost.add(usd, Money::parse("2").unwrap());
        let totals = pass.workspaces.entry(101).or_default();
        totals.cost.add(usd, Money::parse("2").unwrap());
        let mut run = RunSummary::default();
        run.absorb(pass.clone());
        run.absorb(pass);
        let text = run.to_string();
        assert!(
            text.contains("2.0000000000 EUR, 4.0000000000 USD\n"),
            "{text}"
        );
        let workspace = text.lines().find(|l| l.trim_start().starts_with("101"));
        assert!(
            workspace.is_some_and(|l| l.ends_with(" 4.0000000000 USD")),
            "{text}"
        );
    }
}
