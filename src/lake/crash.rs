//! Commit points: the moments between the commits of a path that writes the lake in more
//! than one commit, where a crash leaves part of its work stored.
//!
//! Each path's commits are listed here in order, as data (a pass's [`PASS_COMMIT_ORDER`],
//! which `pipeline::commit` follows; an issue's [`ISSUE_COMMIT_ORDER`], which
//! `billing::ledger` follows; compaction's tables), and [`commit_points`] is built from those
//! lists, so a commit added to a path is a point the crash tests stop at without being told.
//! With `SIMTALLY_CRASH_AFTER_COMMIT=NAME` the process aborts (no cleanup, like `kill -9`)
//! right after the point called NAME: the moments a random kill rarely hits.

use std::fmt;

use super::LakeTable;

/// The tables of an ingest pass in commit order: the points a pass can be stopped between.
/// Events first, so usage never refers to an ownership the lake cannot explain; `usage`
/// last, as it records where the sources resume and closes the pass for the writer fence.
pub const PASS_COMMIT_ORDER: [LakeTable; 6] = [
    LakeTable::SimEvents,
    LakeTable::Workspaces,
    LakeTable::Memberships,
    LakeTable::DeadLetters,
    LakeTable::Quarantine,
    LakeTable::Usage,
];

/// An issue's commits in order: the claim (an empty `invoices` commit), the billed slices,
/// the invoices. A run stopped after the first two has issued nothing: the month is still a
/// draft, and the slices it billed belong to no invoice, so they are not counted as billed.
pub const ISSUE_COMMIT_ORDER: [&str; 3] = ["claim", "billed_slices", "invoices"];

/// The variable that names the point to abort after.
pub const CRASH_AFTER_COMMIT: &str = "SIMTALLY_CRASH_AFTER_COMMIT";

/// A path that writes the lake in several commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WritePath {
    /// An ingest pass: file ingest, Kafka drain and follower, dead-letter replay,
    /// corrections and quarantine releases, directory events.
    Pass,
    /// `invoice --issue`: the ledger claim, the billed slices, the invoices.
    Issue,
    /// `lake compact`: one commit per table.
    Compact,
}

impl WritePath {
    pub const ALL: [WritePath; 3] = [WritePath::Pass, WritePath::Issue, WritePath::Compact];

    /// This path's commits, in the order it makes them.
    pub fn points(self) -> Vec<CommitPoint> {
        let steps: Vec<&'static str> = match self {
            WritePath::Pass => PASS_COMMIT_ORDER.iter().map(|t| t.name()).collect(),
            WritePath::Issue => ISSUE_COMMIT_ORDER.to_vec(),
            WritePath::Compact => LakeTable::ALL.iter().map(|t| t.name()).collect(),
        };
        steps
            .into_iter()
            .map(|step| CommitPoint { path: self, step })
            .collect()
    }
}

/// One commit of one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommitPoint {
    pub path: WritePath,
    pub step: &'static str,
}

impl CommitPoint {
    pub const fn new(path: WritePath, step: &'static str) -> Self {
        CommitPoint { path, step }
    }

    /// Called right after the commit: aborts when the point is the one named by
    /// [`CRASH_AFTER_COMMIT`].
    pub fn passed(self) {
        if std::env::var(CRASH_AFTER_COMMIT).is_ok_and(|named| named == self.to_string()) {
            eprintln!("{CRASH_AFTER_COMMIT}={self}: aborting");
            std::process::abort();
        }
    }
}

/// A pass's points are named by their table (`quarantine`), the others by path and step
/// (`issue:billed_slices`, `compact:usage`).
impl fmt::Display for CommitPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path {
            WritePath::Pass => f.write_str(self.step),
            WritePath::Issue => write!(f, "issue:{}", self.step),
            WritePath::Compact => write!(f, "compact:{}", self.step),
        }
    }
}

/// Every commit point of every path.
pub fn commit_points() -> Vec<CommitPoint> {
    WritePath::ALL.iter().flat_map(|p| p.points()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_has_its_own_name() {
        let points = commit_points();
        let mut names: Vec<String> = points.iter().map(|p| p.to_string()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), points.len(), "{names:?}");
        assert!(names.contains(&"usage".to_string()));
        assert!(names.contains(&"issue:billed_slices".to_string()));
    }
}
