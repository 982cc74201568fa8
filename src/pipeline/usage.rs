use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::{IngestError, IngestOptions, QuarantineTotals, RunSummary};
use crate::attribute::{attribute, Deduplicator, Destination, OwnershipBook, Seen, Slice};
use crate::decode::{decode_usage, Reason, Rejection};
use crate::domain::{UsageRecord, UtcMillis};
use crate::lake::{Lake, LakeTable, TableAppender};
use crate::sink::{DeadLetter, DeadLetterRows, QuarantineRows, UsageRows, BATCH_ROWS};
use crate::source::{Chunk, Input, SourceError};

pub(super) struct UsagePass {
    pub summary: RunSummary,
    /// Written but not yet committed, in commit order.
    pub appenders: Vec<(&'static str, TableAppender)>,
}

/// One line after decoding and attribution, before de-duplication.
// Nearly every line is a `Record`, so boxing it would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    Blank,
    Record {
        line: u64,
        /// Where the line sits in its chunk: kept for a conflicting duplicate's dead letter.
        span: std::ops::Range<usize>,
        record: UsageRecord,
        slices: Vec<Slice>,
    },
    Rejected {
        line: u64,
        rejection: Rejection,
        payload: Vec<u8>,
    },
}

struct Work {
    seq: u64,
    input: usize,
    chunk: Chunk,
}

struct DecodedChunk {
    seq: u64,
    input: usize,
    data: Vec<u8>,
    items: Vec<Decoded>,
}

enum Output {
    Usage(RecordBatch),
    Quarantine(RecordBatch),
    DeadLetters(RecordBatch),
}

/// What the collector needs to know about the lake to keep re-ingest idempotent.
struct AlreadyInLake {
    usage: HashSet<i64>,
    quarantine: HashSet<i64>,
    dead_letters: Arc<HashSet<String>>,
}

pub(super) async fn run(
    lake: &Lake,
    options: &IngestOptions,
    book: Arc<OwnershipBook>,
    dead_letters_in_lake: Arc<HashSet<String>>,
    event_dead_letters: Vec<DeadLetter>,
    now: UtcMillis,
    shutdown: CancellationToken,
) -> Result<UsagePass, IngestError> {
    let in_lake = AlreadyInLake {
        usage: lake.int64_keys(LakeTable::Usage, "record_id").await?,
        quarantine: lake.int64_keys(LakeTable::Quarantine, "record_id").await?,
        dead_letters: dead_letters_in_lake,
    };
    let mut usage = lake.appender(LakeTable::Usage).await?;
    let mut quarantine = lake.appender(LakeTable::Quarantine).await?;
    let mut dead = lake.appender(LakeTable::DeadLetters).await?;

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Output>(4);
    let inputs = options.usage.clone();
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let progress = progress_bar(options.progress, &inputs);
    let collector_shutdown = shutdown.clone();
    let collector = tokio::task::spawn_blocking(move || {
        collect(
            inputs,
            threads,
            book,
            in_lake,
            event_dead_letters,
            now,
            tx,
            progress,
            collector_shutdown,
        )
    });

    while let Some(output) = rx.recv().await {
        match output {
            Output::Usage(batch) => usage.write(batch).await?,
            Output::Quarantine(batch) => quarantine.write(batch).await?,
            Output::DeadLetters(batch) => dead.write(batch).await?,
        }
    }
    let summary = collector
        .await
        .map_err(|e| IngestError::Internal(format!("usage collector failed: {e}")))??;
    Ok(UsagePass {
        summary,
        appenders: vec![
            ("dead_letters", dead),
            ("quarantine", quarantine),
            ("usage", usage),
        ],
    })
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

#[allow(clippy::too_many_arguments)]
fn collect(
    inputs: Vec<Input>,
    threads: usize,
    book: Arc<OwnershipBook>,
    in_lake: AlreadyInLake,
    event_dead_letters: Vec<DeadLetter>,
    now: UtcMillis,
    out: tokio::sync::mpsc::Sender<Output>,
    progress: ProgressBar,
    shutdown: CancellationToken,
) -> Result<RunSummary, IngestError> {
    let names: Vec<String> = inputs.iter().map(Input::source_name).collect();
    let mut state = Collector::new(in_lake, now, out);
    for letter in &event_dead_letters {
        state.dead_letter(letter.clone());
    }
    std::thread::scope(|scope| -> Result<(), IngestError> {
        let (work_tx, work_rx) = mpsc::sync_channel::<Work>(threads * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::sync_channel::<DecodedChunk>(threads * 2);
        let reader = scope.spawn(|| read_chunks(&inputs, work_tx, &progress, &shutdown));
        for _ in 0..threads {
            let (work_rx, done_tx, book) = (work_rx.clone(), done_tx.clone(), book.clone());
            scope.spawn(move || decode_chunks(&work_rx, &done_tx, &book));
        }
        drop(done_tx);
        // Chunks come back out of order; records are applied strictly in input order so
        // that "first delivery wins" means the same thing on every run.
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for chunk in done_rx {
            pending.insert(chunk.seq, chunk);
            while let Some(chunk) = pending.remove(&next) {
                state.apply(&names[chunk.input], &chunk.data, chunk.items)?;
                next += 1;
            }
        }
        reader
            .join()
            .map_err(|_| IngestError::Internal("reader thread panicked".into()))??;
        Ok(())
    })?;
    progress.finish_and_clear();
    state.finish()
}

fn read_chunks(
    inputs: &[Input],
    work: mpsc::SyncSender<Work>,
    progress: &ProgressBar,
    shutdown: &CancellationToken,
) -> Result<(), SourceError> {
    let mut seq = 0;
    for (index, input) in inputs.iter().enumerate() {
        let mut reader = input.open()?;
        while let Some(chunk) = reader.next_chunk()? {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            progress.inc(chunk.data.len() as u64);
            if work
                .send(Work {
                    seq,
                    input: index,
                    chunk,
                })
                .is_err()
            {
                return Ok(());
            }
            seq += 1;
        }
    }
    Ok(())
}

fn decode_chunks(
    work: &Mutex<mpsc::Receiver<Work>>,
    done: &mpsc::SyncSender<DecodedChunk>,
    book: &OwnershipBook,
) {
    loop {
        let next = work.lock().map(|rx| rx.recv());
        let Ok(Ok(Work { seq, input, chunk })) = next else {
            return;
        };
        let base = chunk.data.as_ptr() as usize;
        let items = chunk
            .lines()
            .map(|(line, bytes)| {
                let start = bytes.as_ptr() as usize - base;
                decode_line(line, start..start + bytes.len(), bytes, book)
            })
            .collect();
        if done
            .send(DecodedChunk {
                seq,
                input,
                data: chunk.data,
                items,
            })
            .is_err()
        {
            return;
        }
    }
}

fn decode_line(
    line: u64,
    span: std::ops::Range<usize>,
    bytes: &[u8],
    book: &OwnershipBook,
) -> Decoded {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Blank;
    }
    match decode_usage(bytes) {
        Ok(record) => {
            let slices = attribute(&record, book);
            Decoded::Record {
                line,
                span,
                record,
                slices,
            }
        }
        Err(rejection) => Decoded::Rejected {
            line,
            rejection,
            payload: bytes.to_vec(),
        },
    }
}

/// Applies decoded lines in input order: de-duplication, lake idempotency, batching.
struct Collector {
    dedup: Deduplicator,
    in_lake: AlreadyInLake,
    usage: UsageRows,
    quarantine: QuarantineRows,
    dead_letters: DeadLetterRows,
    summary: RunSummary,
    out: tokio::sync::mpsc::Sender<Output>,
    source: String,
}

impl Collector {
    fn new(in_lake: AlreadyInLake, now: UtcMillis, out: tokio::sync::mpsc::Sender<Output>) -> Self {
        Collector {
            dedup: Deduplicator::default(),
            in_lake,
            usage: UsageRows::new(now),
            quarantine: QuarantineRows::new(now),
            dead_letters: DeadLetterRows::new(now),
            summary: RunSummary::default(),
            out,
            source: String::new(),
        }
    }

    fn apply(
        &mut self,
        input_name: &str,
        data: &[u8],
        items: Vec<Decoded>,
    ) -> Result<(), IngestError> {
        for item in items {
            self.summary.usage.lines += 1;
            match item {
                Decoded::Blank => self.summary.usage.blank += 1,
                Decoded::Record {
                    line,
                    span,
                    record,
                    slices,
                } => {
                    self.set_source(input_name, line);
                    self.record(record, slices, &data[span]);
                }
                Decoded::Rejected {
                    line,
                    rejection,
                    payload,
                } => {
                    self.summary.usage.dead_letters += 1;
                    self.dead_letter(DeadLetter {
                        source: format!("{input_name}:{line}"),
                        rejection,
                        payload,
                    });
                }
            }
            self.flush(BATCH_ROWS)?;
        }
        Ok(())
    }

    fn set_source(&mut self, input_name: &str, line: u64) {
        use std::fmt::Write;
        self.source.clear();
        let _ = write!(self.source, "{input_name}:{line}");
    }

    fn record(&mut self, record: UsageRecord, slices: Vec<Slice>, raw: &[u8]) {
        let counts = &mut self.summary.usage;
        match self.dedup.observe(&record) {
            Seen::First => {}
            Seen::Duplicate => {
                counts.duplicates += 1;
                return;
            }
            Seen::ConflictingDuplicate => {
                counts.duplicates += 1;
                counts.conflicting_duplicates += 1;
                let letter = DeadLetter {
                    source: self.source.clone(),
                    rejection: Rejection::new(
                        Reason::ConflictingDuplicate,
                        format!(
                            "record id {} was already ingested with different content",
                            record.id
                        ),
                    ),
                    payload: raw.to_vec(),
                };
                self.dead_letter(letter);
                return;
            }
        }
        let id = record.id.0;
        let (usage_done, quarantine_done) = (
            self.in_lake.usage.contains(&id),
            self.in_lake.quarantine.contains(&id),
        );
        let writes_something = slices.iter().any(|s| match s.destination {
            Destination::Workspace(_) => !usage_done,
            Destination::Quarantine(_) => !quarantine_done,
        });
        if !writes_something {
            counts.duplicates += 1;
            counts.already_in_lake += 1;
            return;
        }
        counts.records += 1;
        counts.total_volume += record.volume.total();
        counts.total_cost += record.cost;
        let mut seen_in: Vec<i64> = Vec::with_capacity(slices.len());
        for slice in &slices {
            match slice.destination {
                Destination::Workspace(ws) if !usage_done => {
                    self.usage.append(ws, &record, slice, &self.source);
                    self.summary.usage.slices_attributed += 1;
                    let totals = self.summary.workspaces.entry(ws.get()).or_default();
                    totals.slices += 1;
                    totals.volume_total += slice.total();
                    totals.cost += slice.cost;
                    if !seen_in.contains(&ws.get()) {
                        seen_in.push(ws.get());
                        totals.records += 1;
                    }
                }
                Destination::Quarantine(reason) if !quarantine_done => {
                    self.quarantine.append(reason, &record, slice, &self.source);
                    let totals: &mut QuarantineTotals =
                        self.summary.quarantine.entry(reason.as_str()).or_default();
                    totals.slices += 1;
                    totals.volume_total += slice.total();
                    totals.cost += slice.cost;
                }
                _ => {}
            }
        }
    }

    /// Dead letters already in the lake (same source) are not written again.
    fn dead_letter(&mut self, letter: DeadLetter) {
        if self.in_lake.dead_letters.contains(&letter.source) {
            return;
        }
        self.dead_letters.append(&letter);
    }

    /// Sends every builder holding at least `min_rows` rows to the lake writer.
    fn flush(&mut self, min_rows: usize) -> Result<(), IngestError> {
        if self.usage.len() >= min_rows {
            let batch = self.usage.finish();
            self.send(Output::Usage(batch))?;
        }
        if self.quarantine.len() >= min_rows {
            let batch = self.quarantine.finish();
            self.send(Output::Quarantine(batch))?;
        }
        if self.dead_letters.len() >= min_rows {
            let batch = self.dead_letters.finish();
            self.send(Output::DeadLetters(batch))?;
        }
        Ok(())
    }

    fn send(&self, output: Output) -> Result<(), IngestError> {
        self.out
            .blocking_send(output)
            .map_err(|_| IngestError::Internal("the lake writer stopped early".into()))
    }

    fn finish(mut self) -> Result<RunSummary, IngestError> {
        self.flush(1)?;
        Ok(self.summary)
    }
}
