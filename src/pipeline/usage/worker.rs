//! The parallel part of the usage pass: a worker decodes, attributes and fingerprints the
//! lines of a chunk and builds the chunk's Arrow rows. What it cannot decide alone (is this
//! a duplicate?) it leaves to the collector, with enough bookkeeping to drop rows later.

use std::fmt::Write;
use std::ops::Range;
use std::sync::{mpsc, Mutex};

use arrow::array::RecordBatch;

use crate::attribute::{
    attribute, fingerprint, Destination, OwnershipBook, QuarantineReason, Slice,
};
use crate::decode::{decode_usage, InputLimits};
use crate::domain::Rejection;
use crate::domain::{Currency, Money, RecordId, UsageRecord, UtcMillis, Volume, WorkspaceId};
use crate::pipeline::hold::Horizons;
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
    pub book: &'a OwnershipBook,
    pub input_names: &'a [String],
    pub now: UtcMillis,
    pub horizons: &'a Horizons,
    pub limits: &'a InputLimits,
}

impl Worker<'_> {
    /// Takes chunks until the work queue closes or the collector goes away.
    pub fn run(&self, work: &Mutex<mpsc::Receiver<Work>>, done: &mpsc::SyncSender<DecodedChunk>) {
        loop {
            let next = work.lock().map(|rx| rx.recv());
            let Ok(Ok(work)) = next else {
                return;
            };
            if done.send(self.decode_chunk(work)).is_err() {
                return;
            }
        }
    }

    fn decode_chunk(&self, Work { seq, input, chunk }: Work) -> DecodedChunk {
        let base = chunk.data.as_ptr() as usize;
        // Sized once: grown by doubling, these were most of the workers' fresh pages. No
        // usage record is under 128 bytes of JSON, so a chunk of short (blank, broken) lines
        // does not reserve a record for each of them.
        const SHORTEST_RECORD_BYTES: usize = 128;
        let records = usize::try_from(chunk.record_count())
            .unwrap_or(0)
            .min(chunk.data.len() / SHORTEST_RECORD_BYTES);
        let mut lines = 0;
        let mut blank = 0;
        let mut rejected = Vec::new();
        let mut decoded = Vec::with_capacity(records);
        let mut held: Option<HeldTail> = None;
        let mut latest_end = None;
        for (line, bytes) in chunk.records() {
            if let Some(tail) = held.as_mut() {
                // Read on only for how far the usage has got (the hold's bound).
                tail.messages += 1;
                latest_end = latest_end.max(decode_usage(bytes).ok().map(|r| r.end));
                continue;
            }
            let blank_line = bytes.iter().all(u8::is_ascii_whitespace);
            let too_long = self.limits.too_long(&chunk, line, bytes);
            let record = (!blank_line).then(|| match too_long {
                Some(length) => Err(Rejection::line_too_long(
                    length,
                    self.limits.max_line_bytes,
                    crate::source::KEPT_BYTES,
                )),
                None => decode_usage(bytes).and_then(|record| self.limits.usage(record)),
            });
            if let Some(Ok(record)) = &record {
                latest_end = latest_end.max(Some(record.end));
                if !self.horizons.releases(input, record.end) {
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
                Ok(record) => {
                    let slices = attribute(&record, self.book);
                    decoded.push((line, span, record, slices));
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
type Decoded = (u64, Range<usize>, UsageRecord, Vec<Slice>);

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

    fn finish(mut self, decoded: &[Decoded]) -> (UsageBlock, QuarantineBlock) {
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
