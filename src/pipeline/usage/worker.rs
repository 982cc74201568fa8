//! The parallel part of the usage pass: a worker decodes, attributes and fingerprints the
//! lines of a chunk and builds the chunk's Arrow rows. What it cannot decide alone (is this
//! a duplicate?) it leaves to the collector, with enough bookkeeping to drop rows later.

use std::collections::VecDeque;
use std::fmt::Write;
use std::ops::Range;
use std::sync::{mpsc, Mutex};

use arrow::array::RecordBatch;

use super::gate::Gate;
use super::EventsDone;
use crate::attribute::{
    fingerprint, plan, slices_planned, Destination, OwnershipBook, Plan, QuarantineReason, Slice,
    Slices,
};
use crate::decode::{InputLimits, UsageDecoder};
use crate::domain::{Currency, Money, RecordId, UsageRecord, UtcMillis, Volume, WorkspaceId};
use crate::domain::{Reason, Rejection};
use crate::pipeline::partitioned::WorkspaceDay;
use crate::source::{Chunk, MessageKeys, KEPT_BYTES};
use crate::tables::quarantine::QuarantineRows;
use crate::tables::usage::UsageRows;

pub(super) struct Work {
    pub seq: u64,
    pub input: usize,
    pub chunk: Chunk,
}

/// A chunk after decoding and attribution, its rows already in Arrow form.
pub(super) struct DecodedChunk {
    pub seq: u64,
    pub input: usize,
    pub data: Vec<u8>,
    /// The messages' keys (for their dead letters).
    pub keys: MessageKeys,
    pub lines: u64,
    pub blank: u64,
    /// Valid records, in input order.
    pub records: Vec<RecordRows>,
    pub rejected: Vec<RejectedLine>,
    pub usage: UsageBlock,
    pub quarantine: QuarantineBlock,
    /// Where this chunk's partition starts being held for the events, if it does here.
    pub held: Option<HeldTail>,
    /// The latest end of the chunk's valid records, held ones included.
    pub latest_end: Option<UtcMillis>,
}

/// The messages of a chunk from the first one held for the events (see
/// [`crate::pipeline::hold`]): none of them is decided on in this pass.
pub(super) struct HeldTail {
    pub from: u64,
    pub messages: u64,
}

pub(super) struct RejectedLine {
    pub line: u64,
    pub span: Range<usize>,
    pub rejection: Rejection,
}

/// What one valid record became: where its rows are, and what it adds to the run summary.
pub(super) struct RecordRows {
    pub id: RecordId,
    pub fingerprint: u64,
    pub line: u64,
    /// The line within the chunk: a conflicting duplicate's dead letter carries it.
    pub span: Range<usize>,
    /// The UTC day the record starts on (days since 1970-01-01).
    pub start_day: i32,
    pub volume_total: Volume,
    pub cost: Money,
    pub currency: Currency,
    /// Indexes into `UsageBlock::slices`.
    pub usage: Range<usize>,
    /// Indexes into `QuarantineBlock::slices`.
    pub quarantine: Range<usize>,
}

/// One slice as a row of a chunk's batch, with what the run summary needs of it.
pub(super) struct SliceRow<K> {
    pub row: usize,
    pub key: K,
    pub total: Volume,
    pub cost: Money,
}

/// The chunk's `usage` rows, sorted by Workspace and day.
pub(super) struct UsageBlock {
    pub batch: RecordBatch,
    /// Consecutive row ranges of `batch`, one per Workspace day.
    pub days: Vec<(WorkspaceDay, Range<usize>)>,
    pub slices: Vec<SliceRow<WorkspaceId>>,
}

/// The chunk's `quarantine` rows, in input order.
pub(super) struct QuarantineBlock {
    pub batch: RecordBatch,
    pub slices: Vec<SliceRow<QuarantineReason>>,
}

pub(super) struct Worker<'a> {
    pub input_names: &'a [String],
    pub now: UtcMillis,
    pub limits: &'a InputLimits,
}

/// A chunk whose lines are decoded, waiting for the ownership book to be attributed.
pub(super) struct Parsed {
    work: Work,
    /// What decoding and the input limits made of each line that is neither blank nor too
    /// long, in order. The records stay here until the chunk's rows are built.
    decoded: Vec<DecodeResult>,
}

type DecodeResult = Result<UsageRecord, Rejection>;

/// How many chunks (of up to a MiB each) each worker decodes ahead while the events pass
/// builds the ownership book. Enough to keep a core busy that the events leave idle; more
/// is no faster, and a run's peak memory would then depend on how far the workers got
/// before the book was ready (up to 60 MiB on a day of 100,000 records).
pub(super) const PARKED_PER_WORKER: usize = 4;

/// What the workers share: the work queue, the chunks decoded before the events pass was
/// done (at most `most_parked`), and the gate it opens.
pub(super) struct Feed<'a> {
    pub queue: Mutex<Option<mpsc::Receiver<Work>>>,
    pub parked: Mutex<VecDeque<Parsed>>,
    pub most_parked: usize,
    pub events: &'a Gate<EventsDone>,
}

impl Feed<'_> {
    fn next_work(&self) -> Option<Work> {
        let queue = self.queue.lock().ok()?;
        queue.as_ref()?.recv().ok()
    }

    /// Keeps `parsed` for later, or gives it back when enough are kept already.
    fn park(&self, parsed: Parsed) -> Option<Parsed> {
        let Ok(mut parked) = self.parked.lock() else {
            return Some(parsed);
        };
        if parked.len() >= self.most_parked {
            return Some(parsed);
        }
        parked.push_back(parsed);
        None
    }

    fn unpark(&self) -> Option<Parsed> {
        self.parked.lock().ok()?.pop_front()
    }

    fn stop(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
    }
}

impl Worker<'_> {
    /// Takes chunks until the work queue closes or the collector goes away. Before the
    /// events pass is done, it decodes chunks and parks them; after, it attributes the
    /// parked ones first.
    pub fn run(&self, feed: &Feed, done: &mpsc::SyncSender<DecodedChunk>) {
        if !self.work(feed, done) {
            // The collector has gone away, or the events pass ended without a book: the
            // reader stops when its queue is gone.
            feed.stop();
        }
    }

    /// False when the pass is given up.
    fn work(&self, feed: &Feed, done: &mpsc::SyncSender<DecodedChunk>) -> bool {
        while let Some(work) = feed.next_work() {
            let mut parsed = self.parse(work);
            if feed.events.get().is_none() {
                match feed.park(parsed) {
                    None => continue,
                    Some(unparked) => parsed = unparked,
                }
            }
            let Some(events) = feed.events.wait() else {
                return false;
            };
            if !self.finish_parked(feed, events, done)
                || done.send(self.finish(parsed, events)).is_err()
            {
                return false;
            }
        }
        feed.events
            .wait()
            .is_some_and(|events| self.finish_parked(feed, events, done))
    }

    /// False when the collector has gone away.
    fn finish_parked(
        &self,
        feed: &Feed,
        events: &EventsDone,
        done: &mpsc::SyncSender<DecodedChunk>,
    ) -> bool {
        while let Some(parsed) = feed.unpark() {
            if done.send(self.finish(parsed, events)).is_err() {
                return false;
            }
        }
        true
    }

    /// Decodes the chunk's lines: the part of the work that needs nothing of the events.
    fn parse(&self, work: Work) -> Parsed {
        let chunk = &work.chunk;
        // Sized once: grown by doubling, these were most of the workers' fresh pages. No
        // usage record is under 128 bytes of JSON, so a chunk of short (blank, broken) lines
        // does not reserve a record for each of them.
        const SHORTEST_RECORD_BYTES: usize = 128;
        let records = usize::try_from(chunk.record_count())
            .unwrap_or(0)
            .min(chunk.data.len() / SHORTEST_RECORD_BYTES);
        let mut decoded = Vec::with_capacity(records);
        let mut decoder = UsageDecoder::default();
        for (line, bytes) in chunk.records() {
            if self.decodes(chunk, line, bytes) {
                decoded.push(
                    decoder
                        .decode(bytes)
                        .and_then(|record| self.limits.usage(record)),
                );
            }
        }
        Parsed { work, decoded }
    }

    /// Whether [`Self::parse`] decodes the line: neither blank nor too long.
    fn decodes(&self, chunk: &Chunk, line: u64, bytes: &[u8]) -> bool {
        !bytes.iter().all(u8::is_ascii_whitespace)
            && self.limits.too_long(chunk, line, bytes).is_none()
    }

    /// What a line is: `None` blank, else its record with its plan, or why it is refused.
    /// `pending`: the decoded lines not yet taken, in line order.
    fn line_record<'p>(
        &self,
        bytes: &[u8],
        too_long: Option<u64>,
        pending: &mut impl Iterator<Item = Planned<'p>>,
    ) -> Option<Result<(&'p UsageRecord, Plan<'p>), Rejection>> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        if let Some(length) = too_long {
            let max = self.limits.max_line_bytes;
            return Some(Err(Rejection::line_too_long(length, max, KEPT_BYTES)));
        }
        Some(match pending.next() {
            Some(Ok(planned)) => Ok(planned),
            Some(Err(rejection)) => Err(rejection.clone()),
            None => Err(not_decoded()),
        })
    }

    fn finish(&self, parsed: Parsed, events: &EventsDone) -> DecodedChunk {
        let Parsed {
            work: Work { seq, input, chunk },
            decoded: parsed,
        } = parsed;
        let base = chunk.data.as_ptr() as usize;
        let mut lines = 0;
        let mut blank = 0;
        let mut rejected = Vec::new();
        let mut decoded = Vec::with_capacity(parsed.len());
        let mut held: Option<HeldTail> = None;
        let mut latest_end = None;
        let mut pending = plan_all(&parsed, &events.book).into_iter();
        for (line, bytes) in chunk.records() {
            let too_long = self.limits.too_long(&chunk, line, bytes);
            let record = self.line_record(bytes, too_long, &mut pending);
            if let Some(tail) = held.as_mut() {
                // Read on only for how far the usage has got (the hold's bound).
                tail.messages += 1;
                latest_end = latest_end.max(record.and_then(Result::ok).map(|(r, _)| r.end));
                continue;
            }
            if let Some(Ok((record, _))) = &record {
                latest_end = latest_end.max(Some(record.end));
                if !events.horizons.releases(input, record.end) {
                    held = Some(HeldTail {
                        from: line,
                        messages: 1,
                    });
                    continue;
                }
            }
            lines += 1;
            let Some(record) = record else {
                blank += 1;
                continue;
            };
            let start = bytes.as_ptr() as usize - base;
            // A line too long keeps only its start, as one cut by the reader does.
            let kept = match too_long {
                Some(_) => bytes.len().min(KEPT_BYTES),
                None => bytes.len(),
            };
            let span = start..start + kept;
            match record {
                Ok((record, plan)) => {
                    decoded.push((line, span, record, slices_planned(record, plan)));
                }
                Err(rejection) => rejected.push(RejectedLine {
                    line,
                    span,
                    rejection,
                }),
            }
        }
        let mut rows = ChunkRows::new(self.now, &self.input_names[input], decoded.len());
        let records = decoded
            .iter()
            .map(|(line, span, record, slices)| rows.add(*line, span.clone(), record, slices))
            .collect();
        let (usage, quarantine) = rows.finish(&decoded);
        DecodedChunk {
            seq,
            input,
            data: chunk.data,
            keys: chunk.keys,
            lines,
            blank,
            records,
            rejected,
            usage,
            quarantine,
            held,
            latest_end,
        }
    }
}

/// The records of one chunk; (line, span, record, slices).
type Decoded<'a> = (u64, Range<usize>, &'a UsageRecord, Slices);

/// Every decoded record planned, in a loop of nothing else: each looks its SIM up in the
/// ownership book and reads its tenures, two cache misses that do not depend on the records
/// before, so the processor overlaps them (attributed one at a time, between building rows,
/// each record waited on its own misses).
fn plan_all<'p>(parsed: &'p [DecodeResult], book: &'p OwnershipBook) -> Vec<Planned<'p>> {
    parsed
        .iter()
        .map(|record| {
            let record = record.as_ref()?;
            Ok((record, plan(record, book.timeline(&record.iccid))))
        })
        .collect()
}

/// A decoded line: its record with its [`Plan`], or why it was refused.
type Planned<'p> = Result<(&'p UsageRecord, Plan<'p>), &'p Rejection>;

/// [`Worker::parse`] and [`Worker::finish`] walk the same lines with the same test, so
/// every line `finish` looks up was decoded; this names the line if that ever breaks.
fn not_decoded() -> Rejection {
    Rejection::new(
        Reason::NotJson,
        "the line was skipped by the decoder (a bug in simtally)".into(),
    )
}

/// Builds a chunk's rows. `usage` rows are appended only at the end, by Workspace and day,
/// so that the collector gathers each Workspace day's rows as one range of the batch.
struct ChunkRows<'a> {
    now: UtcMillis,
    input_name: &'a str,
    usage_slices: Vec<SliceRow<WorkspaceId>>,
    /// (Workspace day, record index, slice index, index into `usage_slices`)
    pending_usage: Vec<(WorkspaceDay, usize, usize, usize)>,
    quarantine: QuarantineRows,
    quarantine_slices: Vec<SliceRow<QuarantineReason>>,
    source: String,
    records_added: usize,
}

impl<'a> ChunkRows<'a> {
    /// `records`: how many records will be added (most make one usage slice).
    fn new(now: UtcMillis, input_name: &'a str, records: usize) -> Self {
        ChunkRows {
            input_name,
            usage_slices: Vec::with_capacity(records),
            pending_usage: Vec::with_capacity(records),
            quarantine: QuarantineRows::with_capacity(now, 0),
            quarantine_slices: Vec::new(),
            now,
            source: input_name.to_owned(),
            records_added: 0,
        }
    }

    /// `source` becomes the input's name and `line`: the name is written once per chunk (in
    /// `new`), and only the number after it for each row.
    fn set_source(&mut self, line: u64) {
        self.source.truncate(self.input_name.len());
        let _ = write!(self.source, "{line}");
    }

    fn add(
        &mut self,
        line: u64,
        span: Range<usize>,
        record: &UsageRecord,
        slices: &[Slice],
    ) -> RecordRows {
        let record_index = self.records_added;
        let usage_start = self.usage_slices.len();
        let quarantine_start = self.quarantine_slices.len();
        for (slice_index, slice) in slices.iter().enumerate() {
            match slice.destination {
                Destination::Workspace(workspace) => {
                    let day = WorkspaceDay {
                        workspace,
                        usage_date: slice.start.utc_days(),
                    };
                    self.pending_usage.push((
                        day,
                        record_index,
                        slice_index,
                        self.usage_slices.len(),
                    ));
                    self.usage_slices.push(SliceRow {
                        row: usize::MAX,
                        key: workspace,
                        total: slice.total(),
                        cost: slice.cost,
                    });
                }
                Destination::Quarantine(reason) => {
                    self.set_source(line);
                    let row = self.quarantine.len();
                    self.quarantine.append(reason, record, slice, &self.source);
                    self.quarantine_slices.push(SliceRow {
                        row,
                        key: reason,
                        total: slice.total(),
                        cost: slice.cost,
                    });
                }
            }
        }
        self.records_added += 1;
        RecordRows {
            id: record.id,
            fingerprint: fingerprint(record),
            line,
            span,
            start_day: record.start.utc_days(),
            volume_total: record.volume.total(),
            cost: record.cost,
            currency: record.currency,
            usage: usage_start..self.usage_slices.len(),
            quarantine: quarantine_start..self.quarantine_slices.len(),
        }
    }

    fn finish(mut self, decoded: &[Decoded<'_>]) -> (UsageBlock, QuarantineBlock) {
        // Within a Workspace day, rows stay in input order (`usage_slices` index), without
        // the scratch buffer of a stable sort.
        self.pending_usage
            .sort_unstable_by_key(|&(day, _, _, slice_row)| (day, slice_row));
        let mut days: Vec<(WorkspaceDay, Range<usize>)> = Vec::new();
        let pending = std::mem::take(&mut self.pending_usage);
        // Built only now, when the exact row count is known.
        let mut usage = UsageRows::with_capacity(self.now, pending.len());
        for (row, (day, record_index, slice_index, slice_row)) in pending.into_iter().enumerate() {
            match days.last_mut() {
                Some((last, range)) if *last == day => range.end = row + 1,
                _ => days.push((day, row..row + 1)),
            }
            let (line, _, record, slices) = &decoded[record_index];
            self.set_source(*line);
            usage.append(day.workspace, record, &slices[slice_index], &self.source);
            self.usage_slices[slice_row].row = row;
        }
        let usage = UsageBlock {
            batch: usage.finish(),
            days,
            slices: self.usage_slices,
        };
        let quarantine = QuarantineBlock {
            batch: self.quarantine.finish(),
            slices: self.quarantine_slices,
        };
        (usage, quarantine)
    }
}
