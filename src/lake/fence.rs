//! The writer fence: how writers of one lake that run at the same time never both commit
//! work decided on the same read.
//!
//! Every commit a file ingest's pass makes (to `sim_events`, `workspaces`, `memberships`,
//! `dead_letters`, `quarantine`, `usage`) records the Delta `txn` action
//! [`FENCE_APP_ID`] with the pass's number. Delta refuses a commit when a commit made since
//! the committer read the table carries a `txn` with the same application id (a concurrent
//! transaction), so on each table the commits of passes are serialized against what each
//! pass read: a pass whose read of a table is older than another pass's commit to it fails
//! there.
//!
//! Every pass that commits anything ends with a commit to `usage` (with no rows if it has
//! none): the closing commit. So of two passes that both commit, the one whose read of
//! `usage` is older than the other's closing commit fails at its own closing commit at the
//! latest, and the passes that succeed are serial: each read every table after the closing
//! commit of the one before. A pass that fails may have committed some tables before its
//! closing commit, exactly as a pass killed there; the next pass completes that work (see
//! `pipeline::usage::unfinished`).
//!
//! A following ingest's pass does not record the fence: it records the Kafka positions it
//! read up to (`simtally:kafka:<topic>:<partition>`) on every table it commits to, so passes
//! of the same partitions (a member paused past its session and the member that took its
//! partitions over) are serialized exactly as above, and passes of other partitions, which
//! attribute other SIMs, commit side by side. Passes of the two kinds are kept apart by
//! [`Claim`]: a commit that records the fence fails on any commit since its read that records
//! Kafka positions, and the other way round. Delta's own conflict check would let such a
//! commit through (no application id in common), so these commits check the commits since
//! their read themselves and then commit with no automatic retry.
//!
//! The number also tells a killed pass apart: a pass numbers itself one past the largest
//! number recorded in `usage` and `quarantine`, and records it in both, so a `quarantine`
//! number ahead of `usage`'s means the last pass committed `quarantine` and not its closing
//! commit.

use std::collections::HashSet;

use deltalake::kernel::Transaction;

use super::{LakeError, TableAppender};

/// The application id of the writer fence's `txn` action.
pub const FENCE_APP_ID: &str = "simtally:pass";

/// How the application ids of a following ingest's positions begin.
pub const KAFKA_APP_ID_PREFIX: &str = "simtally:kafka:";

/// What a pass's commit claims (its `txn` application ids), checked against each commit
/// made to the table since the pass read it.
#[derive(Clone, Debug)]
pub struct Claim {
    app_ids: HashSet<String>,
    /// The commit removes files or changes the table's metadata (`lake migrate`).
    rewrites: bool,
}

/// What a commit made since a pass read the table did, as far as a [`Claim`] is concerned.
#[derive(Debug, Default)]
pub struct Winner {
    app_ids: HashSet<String>,
    metadata: bool,
    files: bool,
    /// It adds or removes rows (not only rewrites them, as compaction does).
    data: bool,
}

impl Claim {
    /// The claim of a commit recording `txns`; `None` for a commit that is no pass's (its
    /// conflicts are Delta's to check).
    pub fn of(txns: &[Transaction], rewrites: bool) -> Option<Claim> {
        let app_ids: HashSet<String> = txns.iter().map(|t| t.app_id.clone()).collect();
        let claim = Claim { app_ids, rewrites };
        (claim.fenced() || claim.kafka()).then_some(claim)
    }

    fn fenced(&self) -> bool {
        self.app_ids.contains(FENCE_APP_ID)
    }

    fn kafka(&self) -> bool {
        self.topics().next().is_some()
    }

    /// The topics of the Kafka positions claimed.
    fn topics(&self) -> impl Iterator<Item = &str> {
        self.app_ids.iter().filter_map(|id| {
            let (topic, _partition) = id.strip_prefix(KAFKA_APP_ID_PREFIX)?.rsplit_once(':')?;
            Some(topic)
        })
    }

    /// Whether this commit must fail because `winner` was committed since its read: a change
    /// of metadata; an application id in common (Delta's rule); the fence against Kafka
    /// positions either way; positions in other topics (another feed may name the same
    /// SIMs); any file change under a rewrite.
    pub fn yields_to(&self, winner: &Winner) -> bool {
        let theirs = Claim {
            app_ids: winner.app_ids.clone(),
            rewrites: false,
        };
        winner.metadata
            || (self.rewrites && winner.files)
            || !self.app_ids.is_disjoint(&winner.app_ids)
            || (self.fenced() && theirs.kafka())
            || (self.kafka() && theirs.fenced())
            || (self.kafka() && theirs.topics().any(|t| !self.topics().any(|m| m == t)))
    }

    /// Whether the rows `winner` added or removed may be rows this claim's passes read
    /// (SIM events of its partitions, say): always, unless `winner` is a pass of other
    /// partitions of the same topics, or moved no rows.
    pub fn may_share_rows(&self, winner: &Winner) -> bool {
        let other_partitions = self.kafka()
            && !winner.app_ids.contains(FENCE_APP_ID)
            && !winner.app_ids.is_empty()
            && self.app_ids.is_disjoint(&winner.app_ids)
            && winner.app_ids.iter().all(|id| {
                let topic = id
                    .strip_prefix(KAFKA_APP_ID_PREFIX)
                    .and_then(|rest| rest.rsplit_once(':'));
                topic.is_some_and(|(t, _)| self.topics().any(|m| m == t))
            });
        winner.data && !other_partitions
    }
}

impl Winner {
    /// The winner of a Delta commit file's actions (newline-delimited JSON).
    pub fn from_commit(entry: &[u8]) -> Result<Winner, serde_json::Error> {
        let mut winner = Winner::default();
        for line in entry.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let action: serde_json::Value = serde_json::from_slice(line)?;
            if let Some(app_id) = action.pointer("/txn/appId").and_then(|v| v.as_str()) {
                winner.app_ids.insert(app_id.to_owned());
            }
            winner.metadata |= action.get("metaData").is_some() || action.get("protocol").is_some();
            for kind in ["add", "remove"] {
                if let Some(file) = action.get(kind) {
                    winner.files = true;
                    winner.data |= file.get("dataChange") != Some(&serde_json::Value::Bool(false));
                }
            }
        }
        Ok(winner)
    }
}

/// One pass's place in the lake's sequence of passes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fence {
    /// The number the last closing commit recorded in `usage`.
    pub usage: Option<i64>,
    /// The number the last pass that stored quarantined rows recorded in `quarantine`.
    pub quarantine: Option<i64>,
}

impl Fence {
    /// The fence as the pass's `usage` and `quarantine` appenders read it: the versions its
    /// commits are checked against.
    pub async fn read(
        usage: &TableAppender,
        quarantine: &TableAppender,
    ) -> Result<Fence, LakeError> {
        Ok(Fence {
            usage: usage.recorded(FENCE_APP_ID).await?,
            quarantine: quarantine.recorded(FENCE_APP_ID).await?,
        })
    }

    /// This pass's number: one past every number recorded.
    pub fn pass(&self) -> i64 {
        self.usage.max(self.quarantine).unwrap_or(0) + 1
    }

    /// The `txn` action every commit of this pass carries.
    pub fn txn(&self) -> Transaction {
        Transaction::new(FENCE_APP_ID, self.pass())
    }

    /// Whether the last pass committed `quarantine` and was stopped before its closing
    /// commit (killed, or refused by the fence), so its records may be half-stored.
    pub fn last_pass_unfinished(&self) -> bool {
        self.quarantine > self.usage
    }
}

/// How many times work that the fence refused starts again from a fresh read. Four
/// writers of one kind at once on two busy cores needed more than eight; twenty, with the
/// waits below, gives up only after minutes of losing every race.
pub const FENCED_RETRIES: u32 = 20;

/// Waits before attempt `attempt` (2, 3, ...) of work that the fence refused after `spent`
/// on the last attempt: 50 ms, doubled each time up to 6.4 s, but at least `spent` (the
/// writer that won is likely as far from done as this one was), plus up to as much again at
/// random, so that writers refused together do not meet again.
pub async fn back_off(attempt: u32, spent: std::time::Duration) {
    let doubled = 50u64 << attempt.saturating_sub(2).min(7);
    let wait = doubled.max(
        u64::try_from(spent.as_millis())
            .unwrap_or(u64::MAX)
            .min(60_000),
    );
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(wait.max(1))) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait + jitter)).await;
}

/// Runs `attempt` while the fence refuses it (`refused`), each time from a fresh read,
/// at most `retries` times more; returns the last result and how many attempts were made.
/// Each attempt reads the lake afresh, so it sees, and does not repeat, what the writer that
/// won committed.
pub async fn retry_while_refused<T, E, F, Fut>(
    retries: u32,
    refused: impl Fn(&E) -> bool,
    mut attempt: F,
) -> (Result<T, E>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempts = 1;
    loop {
        let started = std::time::Instant::now();
        let result = attempt().await;
        match &result {
            Err(e) if refused(e) && attempts <= retries => {
                tracing::warn!(
                    attempts,
                    "another writer committed to the lake after this run read it; reading it again"
                );
                attempts += 1;
                back_off(attempts, started.elapsed()).await;
            }
            _ => return (result, attempts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(lines: &[&str]) -> Winner {
        Winner::from_commit(lines.join("\n").as_bytes()).unwrap()
    }

    fn txn(app_id: &str) -> String {
        format!(r#"{{"txn":{{"appId":"{app_id}","version":7}}}}"#)
    }

    #[test]
    fn passes_of_other_partitions_commit_side_by_side_and_the_fence_keeps_kinds_apart() {
        let kafka = |ids: &[&str]| {
            let txns: Vec<Transaction> = ids.iter().map(|id| Transaction::new(*id, 3)).collect();
            Claim::of(&txns, false).unwrap()
        };
        let (p0, p1) = ("simtally:kafka:usage:0", "simtally:kafka:usage:1");
        let add = r#"{"add":{"path":"a.parquet","dataChange":true}}"#;
        let other_partition = commit(&[&txn(p1), add]);
        let same_partition = commit(&[&txn(p0), add]);
        let file_pass = commit(&[&txn(FENCE_APP_ID), add]);
        let compaction = commit(&[
            r#"{"add":{"path":"c.parquet","dataChange":false}}"#,
            r#"{"remove":{"path":"b.parquet","dataChange":false}}"#,
        ]);
        let migration = commit(&[&txn(FENCE_APP_ID), r#"{"metaData":{"id":"x"}}"#, add]);
        assert!(!kafka(&[p0]).yields_to(&other_partition));
        assert!(!kafka(&[p0]).yields_to(&compaction));
        let other_feed = commit(&[&txn("simtally:kafka:other-usage:1"), add]);
        assert!(kafka(&[p0]).yields_to(&other_feed));
        assert!(kafka(&[p0]).yields_to(&same_partition));
        assert!(kafka(&[p0]).yields_to(&file_pass));
        assert!(kafka(&[p0]).yields_to(&migration));
        let file = Claim::of(&[Transaction::new(FENCE_APP_ID, 4)], false).unwrap();
        assert!(file.yields_to(&other_partition));
        assert!(file.yields_to(&file_pass));
        assert!(!file.yields_to(&compaction));
        let migrate = Claim::of(&[Transaction::new(FENCE_APP_ID, 4)], true).unwrap();
        assert!(migrate.yields_to(&compaction));
        assert!(Claim::of(&[Transaction::new("simtally:snapshot:x", 1)], false).is_none());
        // What a follower kept from its last pass stays valid beside other partitions' passes.
        assert!(!kafka(&[p0]).may_share_rows(&other_partition));
        assert!(!kafka(&[p0]).may_share_rows(&compaction));
        assert!(kafka(&[p0]).may_share_rows(&same_partition));
        assert!(kafka(&[p0]).may_share_rows(&file_pass));
        assert!(kafka(&[p0]).may_share_rows(&other_feed));
        assert!(kafka(&[p0]).may_share_rows(&commit(&[add])));
    }

    #[test]
    fn a_pass_numbers_itself_after_every_recorded_pass() {
        let fence = |usage, quarantine| Fence { usage, quarantine };
        assert_eq!(fence(None, None).pass(), 1);
        assert_eq!(fence(Some(4), None).pass(), 5);
        assert_eq!(fence(Some(4), Some(6)).pass(), 7);
        assert!(!fence(None, None).last_pass_unfinished());
        assert!(!fence(Some(4), Some(3)).last_pass_unfinished());
        assert!(!fence(Some(4), Some(4)).last_pass_unfinished());
        assert!(fence(Some(4), Some(5)).last_pass_unfinished());
        assert!(fence(None, Some(1)).last_pass_unfinished());
    }
}
