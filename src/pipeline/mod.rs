//! pipeline: one ingest run, end to end. source -> decode -> attribute -> tables -> lake.
//!
//! Lifecycle events are read whole (they are small) and turned into the ownership book;
//! usage is streamed beside them: a reader thread cuts inputs into chunks, worker threads
//! decode them in parallel (ahead, while the book is built) and attribute them once the
//! book is ready, and one collector restores input order, de-duplicates and builds Arrow
//! batches that the async lake writer encodes to Parquet.

mod arrival;
mod commit;
mod corrections;
mod dead_letter_topic;
mod directory;
pub(crate) mod events;
mod follow;
pub mod hold;
mod intake;
mod metrics;
mod partitioned;
mod passes;
mod snapshot;
mod stored;
mod summary;
mod usage;

use std::collections::HashSet;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use arrow::array::RecordBatch;
use deltalake::kernel::Transaction;

use crate::directory::LinkLimits;
use crate::domain::UtcMillis;
use crate::kafka::{
    check_co_partitioned, resume_app_id, KafkaError, KeptConsumers, ReadBudget, TopicToEnd, Topics,
};
use crate::lake::{Fence, Lake, LakeError, LakeTable};
use crate::source::{ChunkSource, Input, Letter, SourceError};
use crate::tables::dead_letters::LetterInput;

pub use corrections::CorrectionCounts;
pub use follow::{follow, FollowSummary};
use hold::Horizons;
pub use hold::{Hold, HoldPolicy};
pub use metrics::Metrics;
use passes::RunInputs;
pub use stored::{StoredFrom, StoredSimEvents};
pub use summary::{
    EventCounts, QuarantineTotals, RunLedger, RunRecord, RunSummary, UsageCounts, WorkspaceTotals,
    QUARANTINE_RECORDS_KEY, RUN_RECORD_KEY,
};
pub use usage::DEFAULT_WINDOW_DAYS;

/// What one `ingest` run reads.
#[derive(Clone, Debug, Default)]
pub struct IngestOptions {
    pub usage: Vec<Input>,
    pub events: Vec<Input>,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Decode threads; 0 means one per core.
    pub threads: usize,
    /// Read the Kafka topics instead of `usage` and `events`.
    pub kafka: Option<KafkaIngest>,
    /// How many Workspaces each organization may link.
    pub link_limits: LinkLimits,
    /// Days of event time whose record ids are held in memory for de-duplication (default
    /// [`DEFAULT_WINDOW_DAYS`]); older records are checked against the lake day by day.
    pub dedup_window_days: Option<u32>,
    /// How long a line and which instants an input may hold.
    pub limits: crate::decode::InputLimits,
}

/// A Kafka read: to the end offsets seen at start (`ingest --brokers --exit-at-end`), or
/// continuously in a consumer group (`ingest --brokers`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaIngest {
    pub brokers: String,
    pub topics: Topics,
    pub group: String,
    /// Keep consuming as a member of the group, one pass every this often
    /// (`None`: read to the end offsets seen at start, then stop).
    pub follow: Option<std::time::Duration>,
    /// With `follow`: where to serve `/metrics` and `/healthz` (HOST:PORT).
    pub metrics_address: Option<String>,
    /// Where new dead letters are also sent, if anywhere.
    pub dead_letter_topic: Option<String>,
    /// With `follow`: how much usage one pass reads at most before it commits (the next
    /// pass goes on at once).
    pub pass_budget: Option<ReadBudget>,
    /// With `follow`: how long usage may wait for the lifecycle events that cover it.
    pub hold: HoldPolicy,
}

/// Errors of an ingest run. `Source` is usually the user's (a missing file), `Lake` an
/// outside system's, `Internal` a bug in simtally.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("cannot serve the metrics endpoint at {address}: {cause}")]
    Serve {
        address: String,
        cause: std::io::Error,
    },
    #[error("interrupted: nothing from this run was committed; run it again to ingest")]
    Interrupted,
    #[error("interrupted after {0} committed passes; run it again to ingest the rest")]
    InterruptedAfterPasses(u64),
    #[error(
        "another writer committed to the lake after this run read it ({attempts} attempt(s){}): \
         the tables this run committed are safe; run it again to complete the work",
        if *rereadable { "" } else { "; stdin cannot be read again" }
    )]
    Fenced { attempts: u32, rereadable: bool },
    #[error("internal error (a bug in simtally): {0}")]
    Internal(String),
}

/// Both topics' reads, (events, usage), planned from the positions the lake recorded.
async fn open_topics(
    lake: &Lake,
    kafka: &KafkaIngest,
    partitions: i32,
    only: Option<Vec<i32>>,
    kept: &KeptConsumers,
) -> Result<(TopicToEnd, TopicToEnd), IngestError> {
    // Both sources' positions are recorded with the last commit of a run, the `usage` one.
    let topics = &kafka.topics;
    let events = open_topic(
        lake,
        kafka,
        &topics.events,
        partitions,
        only.clone(),
        kept.clone(),
    );
    let usage = open_topic(lake, kafka, &topics.usage, partitions, only, kept.clone());
    Ok((events.await?, usage.await?))
}

/// Plans the read of one topic from the positions recorded in the `usage` table's commits.
async fn open_topic(
    lake: &Lake,
    kafka: &KafkaIngest,
    topic: &str,
    partitions: i32,
    only: Option<Vec<i32>>,
    kept: KeptConsumers,
) -> Result<TopicToEnd, IngestError> {
    let app_ids: Vec<String> = (0..partitions)
        .map(|partition| resume_app_id(topic, partition))
        .collect();
    let recorded = lake.resume_points(LakeTable::Usage, &app_ids).await?;
    let (kafka, topic) = (kafka.clone(), topic.to_owned());
    let opened = tokio::task::spawn_blocking(move || {
        TopicToEnd::open(
            &kafka.brokers,
            &kafka.group,
            &topic,
            only.as_deref(),
            &|partition| recorded.get(&resume_app_id(&topic, partition)).copied(),
            &kept,
        )
    })
    .await
    .map_err(|e| IngestError::Internal(format!("opening a topic: {e}")))??;
    Ok(opened)
}

fn transactions(resume_points: &[(String, i64)]) -> Vec<Transaction> {
    resume_points
        .iter()
        .map(|(app_id, next)| Transaction::new(app_id, *next))
        .collect()
}

/// Ingests the inputs into the lake and returns the run summary. Safe to repeat: records,
/// events and dead letters already in the lake are not written again.
pub async fn ingest(
    lake: &Lake,
    options: IngestOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    for input in options.usage.iter().chain(&options.events) {
        input.check_readable()?;
    }
    let inputs = match &options.kafka {
        Some(kafka) => RunInputs::Topics {
            kafka,
            partitions: check_co_partitioned(&kafka.brokers, &kafka.topics).await?,
            consumers: KeptConsumers::default(),
        },
        None => RunInputs::Files,
    };
    passes::run_to_end(lake, &options, inputs, shutdown).await
}

/// How often a follower starts a pass when `KafkaIngest::follow` does not say (the CLI
/// always does: `--pass-seconds`, default 5).
pub const DEFAULT_PASS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// What a pass may start from that earlier passes of the same process left.
#[derive(Default)]
pub struct PassState<'a> {
    /// Where the stored SIM events come from.
    pub stored: StoredFrom,
    /// Hold usage for the events (a follower); `None` writes everything read.
    pub hold: Option<Holding<'a>>,
}

/// A follower's [`Hold`] and when the interval of this pass began (pass starts are at least
/// one interval apart, which is what the hold's idle time is measured against).
#[derive(Debug)]
pub struct Holding<'a> {
    pub hold: &'a mut Hold,
    pub pass_start: std::time::Instant,
}

/// One pass over (events, usage), from what earlier passes left (see
/// [`PassState`]); returns the SIM events as this pass leaves them.
pub async fn ingest_pass(
    lake: &Lake,
    options: &IngestOptions,
    (events_source, usage_source): (Box<dyn ChunkSource>, Box<dyn ChunkSource>),
    PassState { stored, mut hold }: PassState<'_>,
    shutdown: CancellationToken,
) -> Result<(RunSummary, StoredSimEvents), IngestError> {
    let started = std::time::Instant::now();
    let now = UtcMillis::now();
    let opened = OpenedTables::open(lake, events_source.as_ref(), usage_source.as_ref()).await?;
    let (usage_appenders, fence) = (opened.usage, opened.fence);
    let dead_letters_in_lake = opened.dead_letters_in_lake;
    let targets = events::EventTargets {
        appender: opened.events,
        directory_appenders: opened.directory,
        link_limits: options.link_limits.clone(),
        input_limits: &options.limits,
        dead_letters_in_lake: &dead_letters_in_lake,
        stored,
    };
    // The usage pass starts at once and decodes ahead; it attributes once the events pass
    // opens the gate with the ownership book.
    let (opener, events_done) = usage::gate();
    let usage_partitions = usage_source.partitions();
    let events = events_then_open(
        events::run(lake, targets, events_source, now),
        hold.as_mut(),
        &usage_partitions,
        opener,
    );
    let usage = usage::run(
        lake,
        usage_appenders,
        options,
        usage_source,
        events_done,
        dead_letters_in_lake.clone(),
        fence,
        now,
        shutdown.clone(),
    );
    // Boxed: both futures are large, and side by side in this one they overflowed the stack
    // of an unoptimized build.
    let (events, usage) = tokio::join!(Box::pin(events), Box::pin(usage));
    // The events pass's error comes first: the usage pass only gave up for it.
    let (mut event_pass, book) = events?;
    let mut usage_pass = usage?;
    let stored_after = std::mem::take(&mut event_pass.stored_after);
    if let Some(Holding { hold, .. }) = hold {
        for (partition, end) in &usage_pass.latest_end {
            hold.saw_usage(*partition, *end);
        }
    }
    if shutdown.is_cancelled() {
        return Err(IngestError::Interrupted);
    }
    tracing::info!(
        records = usage_pass.summary.usage.records,
        seconds = started.elapsed().as_secs_f64(),
        "usage read and written; committing"
    );

    let corrected = corrections::correction_rows(lake, book, &event_pass.touched, now).await?;
    write_corrections(&mut usage_pass.appenders, &corrected).await?;

    // Events first: usage never refers to an ownership the lake cannot explain.
    let mut summary = usage_pass.summary;
    summary.events = event_pass.counts;
    summary.sim_events_reloaded = event_pass.reloaded;
    summary.corrections = corrected.counts;
    summary.unsent_dead_letters = to_dead_letter_topic(options, &usage_pass.dead_letters).await;
    let writes = PassWrites {
        events: event_pass.appender,
        directory: event_pass.directory_appenders,
        tables: usage_pass.appenders,
        event_points: event_pass.resume_points,
        usage_points: usage_pass.resume_points,
        quarantine_points: usage_pass.quarantine_points,
    };
    let events_version = writes.commit(&mut summary, fence).await?;
    summary.elapsed = started.elapsed();
    tracing::info!(seconds = summary.elapsed.as_secs_f64(), "committed");
    Ok((summary, stored_after.at_version(events_version)))
}

/// Runs the events pass, then opens the usage pass's gate with the ownership book, the
/// usage horizons (a follower's hold) and the events' dead letters. When the events pass
/// fails, `opener` is dropped unopened and the usage pass gives up.
async fn events_then_open(
    event_pass: impl std::future::Future<Output = Result<events::EventPass, IngestError>>,
    hold: Option<&mut Holding<'_>>,
    usage_partitions: &[i32],
    opener: usage::Opener<usage::EventsDone>,
) -> Result<(events::EventPass, Arc<crate::attribute::OwnershipBook>), IngestError> {
    let mut event_pass = event_pass.await?;
    tracing::info!(
        sims = event_pass.book.sim_count(),
        accepted = event_pass.counts.accepted,
        "ownership book ready"
    );
    let horizons = match hold {
        Some(Holding { hold, pass_start }) => {
            hold.saw_events(&event_pass.arrivals, *pass_start);
            hold.horizons(usage_partitions, *pass_start)
        }
        None => Horizons::default(),
    };
    let book = Arc::new(std::mem::take(&mut event_pass.book));
    opener.open(usage::EventsDone {
        book: book.clone(),
        horizons,
        dead_letters: std::sync::Mutex::new(std::mem::take(&mut event_pass.dead_letters)),
    });
    Ok((event_pass, book))
}

/// Sends the pass's dead letters to the dead-letter topic, when one is configured; how
/// many could not be sent (they are in the table all the same).
async fn to_dead_letter_topic(options: &IngestOptions, letters: &[RecordBatch]) -> u64 {
    let kafka = options.kafka.as_ref();
    match kafka.and_then(|k| {
        k.dead_letter_topic
            .as_ref()
            .map(|t| (k.brokers.as_str(), t))
    }) {
        Some((brokers, topic)) => dead_letter_topic::send(brokers, topic, letters).await,
        None => 0,
    }
}

/// The tables a pass writes, opened (their versions fixed) before anything is read from
/// them, with the writer fence and the dead-letter keys its inputs could collide with.
struct OpenedTables {
    events: crate::lake::TableAppender,
    /// `workspaces` and `memberships`.
    directory: [crate::lake::TableAppender; 2],
    /// `usage`, `quarantine` and `dead_letters`.
    usage: [crate::lake::TableAppender; 3],
    fence: Fence,
    dead_letters_in_lake: Arc<HashSet<String>>,
}

impl OpenedTables {
    async fn open(
        lake: &Lake,
        events_source: &dyn ChunkSource,
        usage_source: &dyn ChunkSource,
    ) -> Result<Self, IngestError> {
        // The tables are opened (their versions fixed) before anything is read from them: a
        // commit by another writer after this point makes this run's commit conflict, and one
        // before it is seen in the keys read below. So a run never writes what it did not see.
        let events = lake.appender(LakeTable::SimEvents).await?;
        let directory = [
            lake.appender(LakeTable::Workspaces).await?,
            lake.appender(LakeTable::Memberships).await?,
        ];
        let usage = [
            lake.appender(LakeTable::Usage).await?,
            lake.appender(LakeTable::Quarantine).await?,
            lake.appender(LakeTable::DeadLetters).await?,
        ];
        let fence = Fence::read(&usage[0], &usage[1]).await?;
        // A dead letter is keyed by where it came from (`path:line`, `topic/partition/offset`):
        // only letters of this pass's inputs can collide, when the sources name them all.
        let prefixes: Option<Vec<String>> = (events_source.prefixes_are_final()
            && usage_source.prefixes_are_final())
        .then(|| [events_source.prefixes(), usage_source.prefixes()].concat());
        let dead_letters_in_lake: Arc<HashSet<String>> = Arc::new(
            lake.string_keys_starting(LakeTable::DeadLetters, "source", prefixes.as_deref())
                .await?,
        );
        Ok(OpenedTables {
            events,
            directory,
            usage,
            fence,
            dead_letters_in_lake,
        })
    }
}

/// What a pass wrote and has yet to commit, with the positions its sources read up to.
struct PassWrites {
    events: crate::lake::TableAppender,
    /// `workspaces` and `memberships`.
    directory: [crate::lake::TableAppender; 2],
    /// `quarantine`, `dead_letters` and `usage`, in their commit order.
    tables: Vec<(LakeTable, crate::lake::TableAppender)>,
    event_points: Vec<(String, i64)>,
    usage_points: Vec<(String, i64)>,
    quarantine_points: Vec<(String, i64)>,
}

impl PassWrites {
    /// Commits the pass (see [`Self::into_steps`]) under the writer fence (a file ingest)
    /// or its positions (a follower; `lake::fence`), and adds the versions to `summary`;
    /// returns the `sim_events` version the pass leaves.
    async fn commit(
        self,
        summary: &mut RunSummary,
        fence: Fence,
    ) -> Result<Option<i64>, IngestError> {
        let events_read = self.events.read_version();
        let (steps, resume_points) = self.into_steps(summary);
        let fence = resume_points.is_empty().then_some(fence);
        let committed = commit::CommitPlan::new(fence, steps)?.commit().await?;
        let events_version = committed
            .iter()
            .find(|(table, _)| *table == LakeTable::SimEvents.name())
            .map(|(_, version)| *version)
            .or(events_read);
        summary.lake_versions.extend(committed);
        Ok(events_version)
    }

    /// The pass's commits in their order (events first: usage never refers to an ownership
    /// the lake cannot explain), with the run record on `usage`; and where the sources
    /// resume.
    fn into_steps(self, summary: &RunSummary) -> (Vec<commit::Step>, Vec<(String, i64)>) {
        let events_written = self.events.rows() as u64;
        let [workspaces_appender, memberships_appender] = self.directory;
        let (workspaces_written, memberships_written) = (
            workspaces_appender.rows() as u64,
            memberships_appender.rows() as u64,
        );
        let record = RunRecord::new(summary, |table| match table {
            LakeTable::SimEvents => events_written,
            LakeTable::Workspaces => workspaces_written,
            LakeTable::Memberships => memberships_written,
            _ => self
                .tables
                .iter()
                .find(|(t, _)| *t == table)
                .map_or(0, |(_, appender)| appender.rows() as u64),
        });
        // `usage` is committed last and records where both sources resume: a run that dies
        // before it re-reads everything, and the lake recognizes what it already has. (Events
        // cannot resume from the `sim_events` commit: their dead letters are committed later.)
        let quarantine_points = [self.event_points.as_slice(), &self.quarantine_points].concat();
        let resume_points = [self.event_points, self.usage_points].concat();
        // Every commit that adds rows also names the positions it read up to (Delta `txn`
        // actions): if another member of a consumer group committed the same partitions since
        // this run read the table, Delta refuses the commit, so two instances never both write
        // the same messages (see `follow`). The writer fence does the same for every writer.
        let positions = |rows: usize| match rows {
            0 => Vec::new(),
            _ => transactions(&resume_points),
        };
        let mut steps = vec![commit::Step {
            table: LakeTable::SimEvents,
            txns: positions(self.events.rows()),
            appender: self.events,
        }];
        for (table, appender) in [
            (LakeTable::Workspaces, workspaces_appender),
            (LakeTable::Memberships, memberships_appender),
        ] {
            let txns = positions(appender.rows());
            steps.push(commit::Step {
                table,
                appender,
                txns,
            });
        }
        for (table, mut appender) in self.tables {
            let txns = match table {
                LakeTable::Usage => {
                    // A run that adds nothing leaves the lake as it was, without a record.
                    if let Some(value) = serde_json::to_value(&record)
                        .ok()
                        .filter(|_| record.wrote_something())
                    {
                        appender.record_in_commit(RUN_RECORD_KEY, value);
                    }
                    transactions(&resume_points)
                }
                // A pass killed between its `quarantine` and `usage` commits is told by these,
                // and its records stored in quarantine only are still accounted for.
                LakeTable::Quarantine if appender.rows() > 0 => {
                    appender
                        .record_in_commit(QUARANTINE_RECORDS_KEY, record.quarantine_only.into());
                    transactions(&quarantine_points)
                }
                _ => positions(appender.rows()),
            };
            steps.push(commit::Step {
                table,
                appender,
                txns,
            });
        }
        (steps, resume_points)
    }
}

/// Appends the correction rows to the pass's `usage` and `quarantine` writers, so that they
/// are committed with the pass (and recorded in its run record).
async fn write_corrections(
    appenders: &mut [(LakeTable, crate::lake::TableAppender)],
    rows: &corrections::CorrectionRows,
) -> Result<(), IngestError> {
    for (table, appender) in appenders.iter_mut() {
        match *table {
            LakeTable::Usage => {
                // In Workspace and day order (the map's), as one row group.
                let pieces: Vec<_> = rows.usage.iter().map(|(_, batch)| batch.clone()).collect();
                if !pieces.is_empty() {
                    appender.write_pieces(pieces).await?;
                }
            }
            LakeTable::Quarantine => {
                if let Some(batch) = &rows.quarantine {
                    appender.write(batch.clone()).await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Offers every dead letter in the lake to the pipeline again, under its original
/// coordinates and to the decoder of the input it came from (`simtally dead-letters
/// replay`, after a fix): usage records to the usage pass, SIM and directory events to the
/// events pass. What is accepted now is stored; what fails again, or was ingested since, is
/// recognized and not written twice.
pub async fn replay_dead_letters(
    lake: &Lake,
    options: &IngestOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    passes::run_to_end(lake, options, RunInputs::DeadLetters, shutdown).await
}

/// Every dead letter in the lake, (source, key, payload), as (usage, events) letters.
async fn stored_dead_letters(lake: &Lake) -> Result<(Vec<Letter>, Vec<Letter>), IngestError> {
    let (mut usage, mut events) = (Vec::new(), Vec::new());
    for letter in crate::tables::dead_letters::load(lake).await? {
        let to = match letter.input {
            LetterInput::Usage => &mut usage,
            LetterInput::Events => &mut events,
        };
        to.push((letter.source, letter.key, letter.payload));
    }
    Ok((usage, events))
}
