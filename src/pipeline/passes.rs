//! Every ingest is a run of passes, and one loop runs them all ([`run_passes`]): a
//! [`PassRun`] opens each pass's inputs and takes its outcome, and says what comes next
//! ([`Next`]); the [`StopPolicy`] says whether the run ends on its own or follows until it
//! is stopped.
//!
//! Runs that end ([`run_to_end`]): files and a dead-letter replay take one pass;
//! `ingest --brokers --exit-at-end` reads the topics in passes of at most the read budget
//! each (`--pass-max-records`, `--pass-max-mib`). Each pass commits and the next resumes
//! from the positions it recorded, so a backfill of any size holds at most one pass in
//! memory, and a run stopped midway keeps what it committed. The run ends with the first
//! pass that reaches the end of every input within its budget (not at end offsets fetched
//! up front: some brokers report them behind their logs). As a follower does, each pass
//! starts from the SIM events the previous one left instead of loading them again. A pass
//! refused by the writer fence is run again from a fresh read (inputs that cannot be read
//! again, stdin, are not).
//!
//! A follower (`pipeline::follow`) is a [`PassRun`] too, under [`StopPolicy::Follow`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{
    ingest_pass, open_topics, stored_dead_letters, IngestError, IngestOptions, KafkaIngest,
    PassState, RunSummary, StoredFrom, StoredSimEvents,
};
use crate::kafka::KeptConsumers;
use crate::lake::{back_off, Lake, FENCED_RETRIES};
use crate::source::{ChunkSource, FileChunks, Input, Replayed};

/// What the loop does after a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// The run is over.
    Stop,
    /// The next pass starts at once.
    Now,
    /// The fence refused the pass: it starts again from a fresh read after a back-off
    /// (`lake::fence`); this is its `attempt`-th start (2, 3, ...).
    Again { attempt: u32 },
    /// The next pass starts one interval after this one started (at once for a run that
    /// ends).
    AtInterval,
}

/// When a run of passes ends.
#[derive(Clone, Copy, Debug)]
pub(super) enum StopPolicy {
    /// When its [`PassRun`] says [`Next::Stop`]. A stop request cancels the pass under way.
    AtEnd,
    /// Only when stopped, after the pass under way has committed; passes start every
    /// `interval` (a pass that takes longer is followed at once), so a message waits at most
    /// one interval to be read, however long the passes take.
    Follow { interval: Duration },
}

/// A pass's inputs, (events, usage), and what it starts from.
pub(super) struct PassStart<'a> {
    pub sources: (Box<dyn ChunkSource>, Box<dyn ChunkSource>),
    pub state: PassState<'a>,
}

/// One kind of run: how each pass opens its inputs and what is done with its outcome.
pub(super) trait PassRun {
    /// The next pass's inputs, or `None` when none has anything to read now.
    async fn start(&mut self, pass_start: Instant) -> Result<Option<PassStart<'_>>, IngestError>;

    /// Takes a pass's outcome (a pass refused by the fence included); what comes next, or
    /// the error that ends the run.
    async fn finish(
        &mut self,
        outcome: Result<(RunSummary, StoredSimEvents), IngestError>,
    ) -> Result<Next, IngestError>;
}

/// Runs `run`'s passes under `policy` until it ends or `shutdown` stops it.
pub(super) async fn run_passes(
    lake: &Lake,
    options: &IngestOptions,
    run: &mut impl PassRun,
    policy: StopPolicy,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    let interval = match policy {
        StopPolicy::Follow { interval } => Some(interval),
        StopPolicy::AtEnd => None,
    };
    while interval.is_none() || !shutdown.is_cancelled() {
        let pass_start = Instant::now();
        let next = match run.start(pass_start).await? {
            None => Next::AtInterval,
            Some(PassStart { sources, state }) => {
                // A follower's pass is not cancelled by the stop: it finishes and commits,
                // then the loop ends. (`main` still ends a pass that overstays its grace
                // period; the lake then has not recorded it, and the next start reads it.)
                let pass_shutdown = match interval {
                    Some(_) => CancellationToken::new(),
                    None => shutdown.clone(),
                };
                let outcome = ingest_pass(lake, options, sources, state, pass_shutdown).await;
                run.finish(outcome).await?
            }
        };
        match (next, interval) {
            (Next::Stop, _) => break,
            (Next::Now, _) | (Next::AtInterval, None) => {}
            (Next::Again { attempt }, _) => {
                tracing::warn!(
                    attempts = attempt - 1,
                    "another writer committed to the lake after this run read it; reading it again"
                );
                back_off(attempt, pass_start.elapsed()).await;
            }
            (Next::AtInterval, Some(interval)) => {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep_until((pass_start + interval).into()) => {}
                }
            }
        }
    }
    Ok(())
}

/// What a run reads, pass after pass.
pub(super) enum RunInputs<'a> {
    /// `options.usage` and `options.events`.
    Files,
    /// Both topics from the positions the lake recorded, each pass within the read budget.
    Topics {
        kafka: &'a KafkaIngest,
        partitions: i32,
        /// The topics' consumers, kept from one pass to the next.
        consumers: KeptConsumers,
    },
    /// The dead letters stored in the lake, offered again.
    DeadLetters,
}

/// A pass's sources, (events, usage), and whether it stopped short of the end.
type Opened = (
    (Box<dyn ChunkSource>, Box<dyn ChunkSource>),
    Option<Arc<AtomicBool>>,
);

impl RunInputs<'_> {
    /// Whether a pass can read its inputs again after another writer's commit refused it.
    fn rereadable(&self, options: &IngestOptions) -> bool {
        match self {
            RunInputs::Files => {
                (options.usage.iter().chain(&options.events)).all(|input| *input != Input::Stdin)
            }
            RunInputs::Topics { .. } | RunInputs::DeadLetters => true,
        }
    }

    async fn open(&self, lake: &Lake, options: &IngestOptions) -> Result<Opened, IngestError> {
        match self {
            RunInputs::Files => {
                let max_line = options.limits.max_line_bytes;
                let events = FileChunks::new(options.events.clone()).with_max_line(max_line);
                let usage = FileChunks::new(options.usage.clone()).with_max_line(max_line);
                Ok(((Box::new(events), Box::new(usage)), None))
            }
            RunInputs::Topics {
                kafka,
                partitions,
                consumers,
            } => {
                let (events, mut usage) =
                    open_topics(lake, kafka, *partitions, None, consumers).await?;
                if let Some(budget) = kafka.pass_budget {
                    usage = usage.with_budget(budget);
                }
                let stopped_short = Some(usage.stopped_short());
                Ok(((Box::new(events), Box::new(usage)), stopped_short))
            }
            RunInputs::DeadLetters => {
                let (usage, events) = stored_dead_letters(lake).await?;
                let sources: (Box<dyn ChunkSource>, Box<dyn ChunkSource>) = (
                    Box::new(Replayed::new(events)),
                    Box::new(Replayed::new(usage)),
                );
                Ok((sources, None))
            }
        }
    }
}

/// A run to the end of its inputs: the passes' summaries added up.
struct ToEnd<'a> {
    lake: &'a Lake,
    options: &'a IngestOptions,
    inputs: RunInputs<'a>,
    rereadable: bool,
    /// The SIM events the last committed pass left.
    kept: Option<StoredSimEvents>,
    /// Whether the pass under way stopped short of the end of its inputs (at its budget).
    stopped_short: Option<Arc<AtomicBool>>,
    /// Starts of the pass under way the fence refused.
    refused: u32,
    passes: u64,
    total: Option<RunSummary>,
}

impl PassRun for ToEnd<'_> {
    async fn start(&mut self, _: Instant) -> Result<Option<PassStart<'_>>, IngestError> {
        let (sources, stopped_short) = self.inputs.open(self.lake, self.options).await?;
        self.stopped_short = stopped_short;
        let stored = self.kept.take().map_or(StoredFrom::Lake, |kept| {
            StoredFrom::Kept(kept, Box::new(StoredFrom::Lake), None)
        });
        let state = PassState { stored, hold: None };
        Ok(Some(PassStart { sources, state }))
    }

    async fn finish(
        &mut self,
        outcome: Result<(RunSummary, StoredSimEvents), IngestError>,
    ) -> Result<Next, IngestError> {
        let (pass, stored_after) = match outcome {
            Err(IngestError::Lake(e)) if e.is_concurrent_commit() => {
                let attempts = self.refused + 1;
                if !self.rereadable || self.refused >= FENCED_RETRIES {
                    let rereadable = self.rereadable;
                    return Err(IngestError::Fenced {
                        attempts,
                        rereadable,
                    });
                }
                self.refused = attempts;
                return Ok(Next::Again {
                    attempt: attempts + 1,
                });
            }
            Err(IngestError::Interrupted) if self.passes > 0 => {
                return Err(IngestError::InterruptedAfterPasses(self.passes))
            }
            other => other?,
        };
        self.kept = Some(stored_after);
        self.refused = 0;
        self.passes += 1;
        tracing::info!(
            pass = self.passes,
            records = pass.usage.records,
            seconds = pass.elapsed.as_secs_f64(),
            "pass committed"
        );
        match &mut self.total {
            Some(total) => total.absorb(pass),
            None => self.total = Some(pass),
        }
        let short = self.stopped_short.as_ref();
        Ok(match short.is_some_and(|s| s.load(Ordering::Acquire)) {
            true => Next::Now,
            false => Next::Stop,
        })
    }
}

/// Closes a run's kept consumers, off the runtime (librdkafka blocks until they are closed);
/// before the run leaves its consumer group.
pub(super) async fn close_consumers(consumers: KeptConsumers) -> Result<(), IngestError> {
    tokio::task::spawn_blocking(move || consumers.close())
        .await
        .map_err(|e| IngestError::Internal(format!("closing the consumers: {e}")))
}

/// Runs passes over `inputs` until one reaches their end; the passes' summaries added up.
pub(super) async fn run_to_end(
    lake: &Lake,
    options: &IngestOptions,
    inputs: RunInputs<'_>,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    let started = Instant::now();
    let mut run = ToEnd {
        lake,
        options,
        rereadable: inputs.rereadable(options),
        inputs,
        kept: None,
        stopped_short: None,
        refused: 0,
        passes: 0,
        total: None,
    };
    let result = run_passes(lake, options, &mut run, StopPolicy::AtEnd, &shutdown).await;
    if let RunInputs::Topics { consumers, .. } = run.inputs {
        close_consumers(consumers).await?;
    }
    result?;
    let mut total = run.total.unwrap_or_default();
    total.elapsed = started.elapsed();
    Ok(total)
}
