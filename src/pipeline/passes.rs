//! Runs that end: passes over their inputs until a pass reaches the end of them. Files and a
//! dead-letter replay take one pass; `ingest --brokers --exit-at-end` reads the topics in
//! passes of at most the read budget each (`--pass-max-records`, `--pass-max-mib`). Each
//! pass commits and the next resumes from the positions it recorded, so a backfill of any
//! size holds at most one pass in memory, and a run stopped midway keeps what it committed.
//! The run ends with the first pass that reaches the end of every input within its budget
//! (not at end offsets fetched up front: some brokers report them behind their logs). As a
//! follower does, each pass starts from the SIM events the previous one left instead of
//! loading them again. A pass refused by the writer fence is run again from a fresh read
//! (inputs that cannot be read again, stdin, are not).
//!
//! A follower (`pipeline::follow`) runs passes too, without end, on an interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{
    ingest_pass, open_topics, retry_when_fenced, stored_dead_letters, IngestError, IngestOptions,
    KafkaIngest, PassState, RunSummary, StoredFrom,
};
use crate::lake::Lake;
use crate::source::{ChunkSource, FileChunks, Input, Replayed};

/// What a run reads, pass after pass.
pub(super) enum RunInputs<'a> {
    /// `options.usage` and `options.events`.
    Files,
    /// Both topics from the positions the lake recorded, each pass within the read budget.
    Topics {
        kafka: &'a KafkaIngest,
        partitions: i32,
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
            RunInputs::Topics { kafka, partitions } => {
                let (events, mut usage) = open_topics(lake, kafka, *partitions, None).await?;
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

/// Runs passes over `inputs` until one reaches their end; the passes' summaries added up.
pub(super) async fn run_to_end(
    lake: &Lake,
    options: &IngestOptions,
    inputs: RunInputs<'_>,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    let started = std::time::Instant::now();
    let rereadable = inputs.rereadable(options);
    let mut total: Option<RunSummary> = None;
    let mut passes = 0u64;
    let mut stored = None;
    loop {
        let mut kept = stored.take();
        let pass = retry_when_fenced(rereadable, || {
            let kept = kept.take();
            let (inputs, shutdown) = (&inputs, shutdown.clone());
            async move {
                let (sources, stopped_short) = inputs.open(lake, options).await?;
                let stored = kept.map_or(StoredFrom::Lake, |kept| {
                    StoredFrom::Kept(kept, Box::new(StoredFrom::Lake), None)
                });
                let state = PassState { stored, hold: None };
                let (pass, after) = ingest_pass(lake, options, sources, state, shutdown).await?;
                Ok((pass, after, stopped_short))
            }
        })
        .await;
        let (pass, stored_after, stopped_short) = match pass {
            Err(IngestError::Interrupted) if passes > 0 => {
                return Err(IngestError::InterruptedAfterPasses(passes))
            }
            other => other?,
        };
        stored = Some(stored_after);
        passes += 1;
        tracing::info!(
            pass = passes,
            records = pass.usage.records,
            seconds = pass.elapsed.as_secs_f64(),
            "pass committed"
        );
        match &mut total {
            Some(total) => total.absorb(pass),
            None => total = Some(pass),
        }
        if !stopped_short.is_some_and(|s| s.load(Ordering::Acquire)) {
            break;
        }
    }
    let mut total = total.unwrap_or_default();
    total.elapsed = started.elapsed();
    Ok(total)
}
