//! The usage pass: a reader thread cuts the inputs into chunks, worker threads decode,
//! attribute and build Arrow rows in parallel, one collector applies the chunks in input
//! order (de-duplication, idempotency) and the async lake writer encodes Parquet.

mod collector;
mod gate;
mod known;
mod unfinished;
mod worker;

use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::hold::Horizons;
use super::{IngestError, IngestOptions, RunSummary};
use crate::attribute::OwnershipBook;
use crate::decode::InputLimits;
use crate::domain::UtcMillis;
use crate::lake::{Fence, Lake, LakeTable, RowGroupRows, TableAppender};
use crate::source::{ChunkSource, Input, SourceError};
use crate::tables::dead_letters::DeadLetter;
use collector::{AlreadyInLake, Collector};
use known::KnownRecords;
pub use known::DEFAULT_WINDOW_DAYS;
use unfinished::UnfinishedPass;
use worker::{DecodedChunk, Feed, Work, Worker};

pub(super) use gate::{gate, Gate, Opener};

/// What the events pass hands the usage pass when it is done.
pub(super) struct EventsDone {
    pub book: Arc<OwnershipBook>,
    pub horizons: Horizons,
    /// The events' dead letters, written first by the collector.
    pub dead_letters: Mutex<Vec<DeadLetter>>,
}

pub(super) struct UsagePass {
    pub summary: RunSummary,
    /// Where the next run resumes, to be recorded with the `usage` commit.
    pub resume_points: Vec<(String, i64)>,
    /// Where the `quarantine` commit says this pass read up to (see
    /// [`UnfinishedPass::quarantine_positions`]).
    pub quarantine_points: Vec<(String, i64)>,
    /// Written but not yet committed, in commit order.
    pub appenders: Vec<(LakeTable, TableAppender)>,
    /// The dead letters written, kept when they also go to a dead-letter topic.
    pub dead_letters: Vec<RecordBatch>,
    /// By Kafka partition: the latest end of a valid record read (held ones included).
    pub latest_end: Vec<(i32, UtcMillis)>,
}

/// What the collector hands the lake writer.
enum Output {
    /// Rows in Workspace, day and ICCID order, to be written as one row group.
    Usage(RowGroupRows),
    Quarantine(Vec<RecordBatch>),
    DeadLetters(RecordBatch),
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    lake: &Lake,
    [mut usage, mut quarantine, mut dead]: [TableAppender; 3],
    options: &IngestOptions,
    source: Box<dyn ChunkSource>,
    events: Arc<Gate<EventsDone>>,
    dead_letters_in_lake: Arc<HashSet<String>>,
    fence: Fence,
    now: UtcMillis,
    shutdown: CancellationToken,
) -> Result<UsagePass, IngestError> {
    let window = options
        .dedup_window_days
        .unwrap_or(known::DEFAULT_WINDOW_DAYS);
    let in_lake = AlreadyInLake {
        records: KnownRecords::load(lake, window).await?,
        dead_letters: dead_letters_in_lake,
        unfinished: UnfinishedPass::find(lake, fence, &source.resume_app_ids()).await?,
    };

    let keep_dead_letters = options
        .kafka
        .as_ref()
        .is_some_and(|k| k.dead_letter_topic.is_some());
    let mut dead_letters = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Output>(64);
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let progress = progress_bar(options.progress, &options.usage);
    let expected_records = expected_records(&options.usage);
    let collector_shutdown = shutdown.clone();
    let limits = options.limits.clone();
    let collector = tokio::task::spawn_blocking(move || {
        let mut collector = Collector::new(in_lake, expected_records, now, tx);
        let stages = Stages {
            source,
            threads,
            events,
            now,
            limits,
            progress,
            shutdown: collector_shutdown,
        };
        let source = stages.run(&mut collector)?;
        let resume_points = resume_before_held(&*source, collector.held_from());
        let partitions = source.partitions();
        let latest_end: Vec<(i32, UtcMillis)> = collector
            .latest_end()
            .iter()
            .filter_map(|(input, end)| Some((*partitions.get(*input)?, *end)))
            .collect();
        let quarantine_points = collector.quarantine_positions(&resume_points);
        let summary = collector.finish()?;
        Ok::<_, IngestError>((summary, resume_points, quarantine_points, latest_end))
    });

    while let Some(output) = rx.recv().await {
        match output {
            Output::Usage(rows) => usage.write_rows(rows, &[]).await?,
            Output::Quarantine(pieces) => quarantine.write_pieces(pieces).await?,
            Output::DeadLetters(batch) => {
                if keep_dead_letters {
                    dead_letters.push(batch.clone());
                }
                dead.write(batch).await?
            }
        }
    }
    let (summary, resume_points, quarantine_points, latest_end) = collector
        .await
        .map_err(|e| IngestError::Internal(format!("usage collector failed: {e}")))??;
    Ok(UsagePass {
        summary,
        resume_points,
        quarantine_points,
        appenders: vec![
            (LakeTable::DeadLetters, dead),
            (LakeTable::Quarantine, quarantine),
            (LakeTable::Usage, usage),
        ],
        dead_letters,
        latest_end,
    })
}

/// Where the next pass resumes: where this one read up to, except in an input held for the
/// events, which resumes at its first held message.
fn resume_before_held(
    source: &dyn ChunkSource,
    held_from: &BTreeMap<usize, u64>,
) -> Vec<(String, i64)> {
    let mut points = source.resume_points();
    let app_ids = source.resume_app_ids();
    for (input, from) in held_from {
        let Some((_, app_id)) = app_ids.get(*input) else {
            continue;
        };
        let from = i64::try_from(*from).unwrap_or(i64::MAX);
        match points.iter_mut().find(|(id, _)| id == app_id) {
            Some(point) => point.1 = from,
            None => points.push((app_id.clone(), from)),
        }
    }
    points
}

/// About how many records the inputs hold, from their sizes (stdin counts as none). Usage
/// records are 350 to 500 bytes of JSON; erring high only reserves a little more memory.
fn expected_records(inputs: &[Input]) -> usize {
    const SMALLEST_RECORD_BYTES: u64 = 350;
    const MOST: usize = 64 * 1024 * 1024;
    let bytes: u64 = inputs.iter().filter_map(Input::size).sum();
    usize::try_from(bytes / SMALLEST_RECORD_BYTES).map_or(MOST, |n| n.min(MOST))
}

fn progress_bar(enabled: bool, inputs: &[Input]) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} usage {bytes}/{total_bytes} {bar:30} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The threads of the pass, run from the collector's (blocking) thread.
struct Stages {
    source: Box<dyn ChunkSource>,
    threads: usize,
    events: Arc<Gate<EventsDone>>,
    now: UtcMillis,
    limits: InputLimits,
    progress: ProgressBar,
    shutdown: CancellationToken,
}

impl Stages {
    /// Runs the pass to the end of the source and gives the source back (for its resume
    /// points). The reader and the workers start at once; the collector applies nothing
    /// before the events pass is done, and then its dead letters first.
    fn run(self, collector: &mut Collector) -> Result<Box<dyn ChunkSource>, IngestError> {
        let Stages {
            mut source,
            threads,
            events,
            now,
            limits,
            progress,
            shutdown,
        } = self;
        let names = source.prefixes();
        let worker = Worker {
            input_names: &names,
            now,
            limits: &limits,
        };
        let (work_tx, work_rx) = mpsc::sync_channel::<Work>(threads * 2);
        let feed = Feed {
            queue: Mutex::new(Some(work_rx)),
            parked: Mutex::default(),
            most_parked: threads * worker::PARKED_PER_WORKER,
            events: &events,
        };
        std::thread::scope(|scope| -> Result<(), IngestError> {
            let (done_tx, done_rx) = mpsc::sync_channel::<DecodedChunk>(threads * 2);
            let reader = scope.spawn(|| read_chunks(&mut *source, work_tx, &progress, &shutdown));
            for _ in 0..threads {
                let (feed, done_tx, worker) = (&feed, done_tx.clone(), &worker);
                scope.spawn(move || worker.run(feed, &done_tx));
            }
            drop(done_tx);
            collector.prepare();
            let Some(ready) = events.wait() else {
                return Err(IngestError::Internal(
                    "the events pass ended without an ownership book".into(),
                ));
            };
            let ahead = feed.parked.lock().map_or(0, |parked| parked.len());
            tracing::debug!(chunks = ahead, "usage decoded while the book was built");
            let letters = ready
                .dead_letters
                .lock()
                .map(|mut l| std::mem::take(&mut *l));
            for letter in letters.unwrap_or_default() {
                collector.dead_letter(letter);
            }
            // Chunks come back out of order; they are applied strictly in input order.
            let mut pending = BTreeMap::new();
            let mut next = 0u64;
            for chunk in done_rx {
                pending.insert(chunk.seq, chunk);
                while let Some(chunk) = pending.remove(&next) {
                    collector.apply(&names[chunk.input], chunk)?;
                    next += 1;
                }
            }
            reader
                .join()
                .map_err(|_| IngestError::Internal("reader thread panicked".into()))??;
            Ok(())
        })?;
        progress.finish_and_clear();
        Ok(source)
    }
}

fn read_chunks(
    source: &mut dyn ChunkSource,
    queue: mpsc::SyncSender<Work>,
    progress: &ProgressBar,
    shutdown: &CancellationToken,
) -> Result<(), SourceError> {
    let mut seq = 0;
    while let Some((input, chunk)) = source.next_chunk()? {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        progress.inc(chunk.data.len() as u64);
        if queue.send(Work { seq, input, chunk }).is_err() {
            return Ok(());
        }
        seq += 1;
    }
    Ok(())
}
