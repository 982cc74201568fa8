//! `ingest --brokers` without `--exit-at-end`: a member of a consumer group that keeps the
//! lake up to date. Every interval it starts one pass (the same pass as `--exit-at-end`) over
//! the partitions it owns, from the positions recorded in the lake to their current end, and
//! commits. Instances in one group share the partitions; when one stops, the others take its
//! partitions over from the positions it last committed.
//!
//! Its passes run in the loop every run shares (`pipeline::passes`), under
//! `StopPolicy::Follow`.
//!
//! Exactly once across instances: a pass's commits name the positions it read up to (Delta
//! `txn` actions), and Delta refuses a commit when another writer committed the same
//! positions since this one read the table. During a rebalance two members may briefly both
//! read a partition; the later commit is refused, its pass is dropped, and the next pass
//! starts from what the lake holds.

use std::sync::Arc;
use std::time::Instant;

use deltalake::kernel::Transaction;
use tokio_util::sync::CancellationToken;

use super::metrics::serve_operations;
use super::passes::{close_consumers, run_passes, Next, PassRun, PassStart, StopPolicy};
use super::{
    open_topics, Hold, Holding, IngestError, IngestOptions, KafkaIngest, Metrics, PassState,
    RunSummary, StoredFrom, StoredSimEvents,
};
use crate::kafka::{check_co_partitioned, resume_app_id, GroupMember, KeptConsumers};
use crate::lake::{Claim, Lake};
use crate::source::{ChunkSource, SourceError};

/// What a following ingest did until it was stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowSummary {
    pub passes: u64,
    /// Passes dropped because another member committed the same partitions first.
    pub passes_dropped: u64,
    pub records: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

impl FollowSummary {
    fn add(&mut self, pass: &RunSummary) {
        self.passes += 1;
        self.records += pass.usage.records;
        self.duplicates += pass.usage.duplicates;
        self.dead_letters += pass.usage.dead_letters + pass.events.dead_letters;
    }
}

/// The log line of a committed pass that read anything.
fn log_committed(pass: &RunSummary, partitions: &[i32]) {
    if pass.usage.lines + pass.events.lines > 0 {
        tracing::info!(
            ?partitions,
            records = pass.usage.records,
            held = pass.usage.held,
            events = pass.events.accepted,
            seconds = pass.elapsed.as_secs_f64(),
            "pass committed"
        );
    }
}

impl std::fmt::Display for FollowSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped after {} passes ({} dropped to another member): {} records, {} duplicates, {} dead letters",
            self.passes, self.passes_dropped, self.records, self.duplicates, self.dead_letters
        )
    }
}

/// Runs passes every `kafka.follow` until `shutdown`; then finishes the pass under way (so it
/// commits) and leaves the group.
pub async fn follow(
    lake: &Lake,
    options: &IngestOptions,
    kafka: &KafkaIngest,
    shutdown: CancellationToken,
) -> Result<FollowSummary, IngestError> {
    let partitions = check_co_partitioned(&kafka.brokers, &kafka.topics).await?;
    let metrics = Arc::new(Metrics::default());
    let server_stop = CancellationToken::new();
    let _stop_server_on_return = server_stop.clone().drop_guard();
    if let Some(address) = &kafka.metrics_address {
        let bound = serve_operations(address, metrics.clone(), server_stop)
            .await
            .map_err(|e| IngestError::Serve {
                address: address.clone(),
                cause: e,
            })?;
        tracing::info!("metrics at http://{bound}/metrics, health at http://{bound}/healthz");
    }
    let joining = kafka.clone();
    let member = tokio::task::spawn_blocking(move || {
        GroupMember::join(&joining.brokers, &joining.group, &joining.topics)
    })
    .await
    .map_err(|e| IngestError::Internal(format!("joining the group: {e}")))??;
    tracing::info!(group = %kafka.group, "joined the consumer group");
    let mut run = Follower {
        lake,
        kafka,
        partitions,
        member: &member,
        metrics: &metrics,
        consumers: KeptConsumers::default(),
        kept: None,
        hold: Hold::new(kafka.hold),
        stalled_passes: 0,
        current: None,
        total: FollowSummary::default(),
    };
    let interval = kafka.follow.unwrap_or(super::DEFAULT_PASS_INTERVAL);
    let policy = StopPolicy::Follow { interval };
    let result = run_passes(lake, options, &mut run, policy, &shutdown).await;
    close_consumers(std::mem::take(&mut run.consumers)).await?;
    // Stopped: the next member to own these partitions starts from their snapshots.
    if let (Ok(()), Some(kept)) = (&result, &run.kept) {
        write_snapshots(lake, kafka, kept).await;
    }
    let result = result.map(|()| run.total);
    tokio::task::spawn_blocking(move || member.leave())
        .await
        .map_err(|e| IngestError::Internal(format!("leaving the group: {e}")))?;
    tracing::info!("left the consumer group");
    result
}

/// A pass that committed nothing: dropped when another member committed its partitions
/// first, or when the broker stalled (the next pass reads again from the lake's positions, at
/// once; a few times in a row before the member gives up and its supervisor restarts it);
/// anything else ends the follower. Returns whether the next pass starts at once.
fn dropped(
    e: IngestError,
    stalled_passes: &mut u32,
    owned: &[i32],
    total: &mut FollowSummary,
    metrics: &Metrics,
) -> Result<bool, IngestError> {
    match e {
        IngestError::Lake(e) if e.is_concurrent_commit() => {
            *stalled_passes = 0;
            metrics.record_dropped_pass();
            total.passes_dropped += 1;
            tracing::warn!(
                partitions = ?owned,
                "another member committed these partitions first; pass dropped"
            );
            Ok(false)
        }
        IngestError::Source(e @ SourceError::Kafka { .. }) if *stalled_passes < STALLED_PASSES => {
            *stalled_passes += 1;
            metrics.record_dropped_pass();
            total.passes_dropped += 1;
            tracing::warn!(
                partitions = ?owned,
                "pass dropped ({} of {STALLED_PASSES} in a row allowed): {e}",
                stalled_passes
            );
            Ok(true)
        }
        e => Err(e),
    }
}

/// A follower's passes: over the partitions this member owns now, from the SIM events the
/// last pass left while the assignment stays the same.
struct Follower<'a> {
    lake: &'a Lake,
    kafka: &'a KafkaIngest,
    partitions: i32,
    member: &'a GroupMember,
    metrics: &'a Metrics,
    /// The topics' consumers, kept from one pass to the next.
    consumers: KeptConsumers,
    /// The SIM events the last committed pass left, and the assignment it ran under.
    kept: Option<Kept>,
    /// What the passes learned of each partition's progress: it stays true across
    /// assignments, so it is kept while partitions come and go.
    hold: Hold,
    stalled_passes: u32,
    /// The pass under way.
    current: Option<Current>,
    total: FollowSummary,
}

/// What the pass under way read from, for its outcome.
struct Current {
    owned: Vec<i32>,
    generation: u64,
    events_since_snapshot: u64,
    /// Whether its usage stopped at the pass budget, short of the end.
    backlog: Arc<std::sync::atomic::AtomicBool>,
}

impl PassRun for Follower<'_> {
    async fn start(&mut self, pass_start: Instant) -> Result<Option<PassStart<'_>>, IngestError> {
        let (owned, generation) = self.member.owned();
        if owned.is_empty() {
            return Ok(None);
        }
        let (lake, kafka, metrics) = (self.lake, self.kafka, self.metrics);
        let Some((events, usage, backlog)) = pass_sources(
            lake,
            kafka,
            (self.partitions, &owned),
            &self.consumers,
            metrics,
        )
        .await?
        else {
            return Ok(None);
        };
        let assignment = (owned.as_slice(), generation);
        let (stored, events_since_snapshot) =
            stored_from(lake, kafka, self.kept.take(), assignment, metrics).await;
        self.current = Some(Current {
            owned,
            generation,
            events_since_snapshot,
            backlog,
        });
        let hold = Some(Holding {
            hold: &mut self.hold,
            pass_start,
        });
        let state = PassState { stored, hold };
        Ok(Some(PassStart {
            sources: (events, usage),
            state,
        }))
    }

    async fn finish(
        &mut self,
        outcome: Result<(RunSummary, StoredSimEvents), IngestError>,
    ) -> Result<Next, IngestError> {
        let Some(current) = self.current.take() else {
            return Err(IngestError::Internal(
                "a pass finished that never started".into(),
            ));
        };
        // A pass that read only messages held for the events did not make the backlog any
        // smaller: the next one waits for the interval like an idle one.
        let mut shortened_backlog = true;
        match outcome {
            Ok((summary, stored_after)) => {
                self.stalled_passes = 0;
                shortened_backlog = summary.usage.lines > 0 || summary.usage.held == 0;
                let next = Kept {
                    generation: current.generation,
                    partitions: current.owned.clone(),
                    stored: stored_after,
                    events_since_snapshot: current.events_since_snapshot + summary.events.accepted,
                };
                self.kept = Some(next.snapshot_if_due(self.lake, self.kafka).await);
                self.metrics.record_pass(&summary);
                if summary.sim_events_reloaded {
                    self.metrics.record_ownership_load();
                }
                log_committed(&summary, &current.owned);
                self.total.add(&summary);
            }
            Err(e) => {
                let (stalled, total) = (&mut self.stalled_passes, &mut self.total);
                if dropped(e, stalled, &current.owned, total, self.metrics)? {
                    return Ok(Next::Now);
                }
            }
        }
        let backlog = current.backlog.load(std::sync::atomic::Ordering::Acquire);
        Ok(match shortened_backlog && backlog {
            true => Next::Now,
            false => Next::AtInterval,
        })
    }
}

/// What this member's passes claim: the positions of its partitions in both topics.
fn claim_of(kafka: &KafkaIngest, partitions: &[i32]) -> Option<Claim> {
    let txns: Vec<Transaction> = [&kafka.topics.usage, &kafka.topics.events]
        .iter()
        .flat_map(|topic| partitions.iter().map(|p| resume_app_id(topic, *p)))
        .map(|app_id| Transaction::new(app_id, 0))
        .collect();
    Claim::of(&txns, false)
}

/// Passes in a row a broker may fail (each after its stall limit) before the member stops.
const STALLED_PASSES: u32 = 5;

/// A follower writes its partitions' SIM event snapshots after this many new events (and
/// when its assignment changes, and when it stops).
const SNAPSHOT_AFTER_EVENTS: u64 = 100_000;

/// The SIM events the last committed pass left, and the assignment it ran under.
/// A pass's events and usage sources, with its usage source's "stopped at the budget" flag.
type PassSources = (
    Box<dyn ChunkSource>,
    Box<dyn ChunkSource>,
    Arc<std::sync::atomic::AtomicBool>,
);

struct Kept {
    generation: u64,
    partitions: Vec<i32>,
    stored: StoredSimEvents,
    events_since_snapshot: u64,
}

/// The topics' partitions `owned` opened for one pass, each to the end seen now, usage
/// within the pass budget (and whether it stopped short of the end); `None` when neither
/// has anything new (an idle pass would still load every key from the lake).
async fn pass_sources(
    lake: &Lake,
    kafka: &KafkaIngest,
    (partitions, owned): (i32, &[i32]),
    consumers: &KeptConsumers,
    metrics: &Metrics,
) -> Result<Option<PassSources>, IngestError> {
    let only = Some(owned.to_vec());
    let (events, usage) = open_topics(lake, kafka, partitions, only, consumers).await?;
    let (events, mut usage) = (events.ending_at_start(), usage.ending_at_start());
    if let Some(budget) = kafka.pass_budget {
        usage = usage.with_budget(budget);
    }
    // A pass that stops at its budget leaves a backlog: the next starts at once.
    let backlog = usage.stopped_short();
    // An idle pass would still load every key from the lake: skip it.
    let (mut events, mut usage) = (events, usage);
    let (events, usage, pending) = tokio::task::spawn_blocking(move || {
        let pending = events.probe_pending()? || usage.probe_pending()?;
        Ok::<_, crate::source::SourceError>((events, usage, pending))
    })
    .await
    .map_err(|e| IngestError::Internal(format!("probing the topics: {e}")))??;
    if !pending {
        return Ok(None);
    }
    metrics.record_lag(events.lags().into_iter().chain(usage.lags()));
    Ok(Some((Box::new(events), Box::new(usage), backlog)))
}

impl Kept {
    /// Writes the partitions' snapshots once enough events arrived since the last ones.
    async fn snapshot_if_due(mut self, lake: &Lake, kafka: &KafkaIngest) -> Self {
        if self.events_since_snapshot >= SNAPSHOT_AFTER_EVENTS {
            write_snapshots(lake, kafka, &self).await;
            self.events_since_snapshot = 0;
        }
        self
    }
}

/// Where a pass over `owned` (of assignment `generation`) takes the stored SIM events
/// from: those the last pass kept, while the assignment is the same; else the partitions'
/// snapshots (written first for the previous assignment's partitions, where the next member
/// to own them starts). With the events accepted since the last snapshot.
async fn stored_from(
    lake: &Lake,
    kafka: &KafkaIngest,
    kept: Option<Kept>,
    (owned, generation): (&[i32], u64),
    metrics: &Metrics,
) -> (StoredFrom, u64) {
    let snapshot = StoredFrom::Snapshot {
        topic: kafka.topics.events.clone(),
        partitions: owned.to_vec(),
    };
    match kept {
        Some(kept) if kept.generation == generation => (
            StoredFrom::Kept(kept.stored, Box::new(snapshot), claim_of(kafka, owned)),
            kept.events_since_snapshot,
        ),
        previous => {
            if let Some(previous) = previous {
                write_snapshots(lake, kafka, &previous).await;
            }
            tracing::info!(partitions = ?owned, "SIM events loaded from the lake for this assignment");
            metrics.record_ownership_load();
            (snapshot, 0)
        }
    }
}

/// Snapshots only save the next assignment a longer load: a failure is logged, not fatal.
async fn write_snapshots(lake: &Lake, kafka: &KafkaIngest, kept: &Kept) {
    let topic = &kafka.topics.events;
    match super::snapshot::write(lake, topic, &kept.stored, &kept.partitions).await {
        Ok(Some(version)) => {
            tracing::info!(partitions = ?kept.partitions, version, "SIM event snapshots written")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(partitions = ?kept.partitions, "SIM event snapshots not written: {e}")
        }
    }
}
