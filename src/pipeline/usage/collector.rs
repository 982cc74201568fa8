//! The serial part of the usage pass: chunks are applied strictly in input order, so that
//! "the first delivery wins" means the same on every run. It only decides, per record,
//! whether its rows are kept; the rows themselves were built by the workers.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use arrow::array::RecordBatch;

use super::known::KnownRecords;
use super::unfinished::UnfinishedPass;
use super::worker::{DecodedChunk, RecordRows, SliceRow, UsageBlock};
use super::Output;
use crate::attribute::{Deduplicator, Seen};
use crate::domain::{Currency, UtcMillis};
use crate::domain::{Reason, Rejection};
use crate::lake::{encoder_threads, RowGroupRows};
use crate::pipeline::partitioned::PartitionedBatches;
use crate::pipeline::{IngestError, QuarantineTotals, RunSummary};
use crate::source::MessageKeys;
use crate::tables::dead_letters::{DeadLetter, DeadLetterRows, LetterInput};

/// Rows per record batch handed to the writer: large enough for good Parquet pages, small
/// enough to keep memory flat.
const BATCH_ROWS: usize = 64 * 1024;

/// `quarantine` rows gathered before they go to the writer as one row group. Smaller than
/// [`BATCH_ROWS`]: a run quarantines a few percent of its records, so 64 Ki rows held most
/// of them (25 MiB for 1 M records) until the end of the run.
const QUARANTINE_BUFFER_ROWS: usize = 16 * 1024;

/// `usage` rows gathered over all Workspaces before each Workspace's rows go to the writer
/// as one row group. Measured on the 1 M benchmark (5 Workspaces): 128 Ki rows was faster
/// than 64 Ki (more row groups) and than 256 Ki (more memory touched: 600 MiB against 550).
const USAGE_BUFFER_ROWS: usize = 128 * 1024;

/// How many records ahead the de-duplication table is asked to fetch a record's slot: about
/// as many as a cache miss takes to pass while the collector decides on the records between.
const PREFETCH_AHEAD: usize = 8;

/// What the collector needs to know about the lake to keep re-ingest idempotent.
pub(super) struct AlreadyInLake {
    pub records: KnownRecords,
    pub dead_letters: Arc<HashSet<String>>,
    /// Records a pass killed between its `quarantine` and `usage` commits may have left in
    /// one table and not the other.
    pub unfinished: UnfinishedPass,
}

pub(super) struct Collector {
    dedup: Deduplicator,
    in_lake: AlreadyInLake,
    usage: PartitionedBatches,
    quarantine: Vec<RecordBatch>,
    quarantine_rows: usize,
    dead_letters: DeadLetterRows,
    summary: RunSummary,
    out: tokio::sync::mpsc::Sender<Output>,
    /// By input: the offset from which it is held for the events (see
    /// [`crate::pipeline::hold`]); nothing from there on is decided in this pass.
    held_from: BTreeMap<usize, u64>,
    /// By input: the latest end of a valid record read, held ones included.
    latest_end: BTreeMap<usize, UtcMillis>,
}

/// Rows of one chunk's batch that are not to be written.
struct Dropped(Option<Vec<bool>>);

impl Dropped {
    fn mark(&mut self, rows: usize, row: usize) {
        self.0.get_or_insert_with(|| vec![false; rows])[row] = true;
    }

    /// The kept rows of `range`, as maximal runs: duplicates are rare, so the kept rows are
    /// taken around them (picked or sliced) instead of from a filtered copy of the batch.
    fn kept_runs(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let Some(dropped) = &self.0 else {
            return if range.is_empty() {
                vec![]
            } else {
                vec![range]
            };
        };
        let mut runs = Vec::new();
        let mut start = range.start;
        for row in range.clone() {
            if dropped[row] {
                if start < row {
                    runs.push(start..row);
                }
                start = row + 1;
            }
        }
        if start < range.end {
            runs.push(start..range.end);
        }
        runs
    }

    /// The kept rows of `batch`, as slices of it.
    fn kept_pieces(&self, batch: &RecordBatch, range: Range<usize>) -> Vec<RecordBatch> {
        self.kept_runs(range)
            .into_iter()
            .map(|run| batch.slice(run.start, run.len()))
            .collect()
    }
}

impl Collector {
    /// `expected_records` sizes the duplicate table; it is only an estimate.
    pub fn new(
        in_lake: AlreadyInLake,
        expected_records: usize,
        now: UtcMillis,
        out: tokio::sync::mpsc::Sender<Output>,
    ) -> Self {
        Collector {
            dedup: Deduplicator::with_capacity(expected_records),
            in_lake,
            usage: PartitionedBatches::default(),
            quarantine: Vec::new(),
            quarantine_rows: 0,
            dead_letters: DeadLetterRows::new(now),
            summary: RunSummary::default(),
            out,
            held_from: BTreeMap::new(),
            latest_end: BTreeMap::new(),
        }
    }

    pub fn apply(&mut self, input_name: &str, mut chunk: DecodedChunk) -> Result<(), IngestError> {
        if let Some(end) = chunk.latest_end {
            let latest = self.latest_end.entry(chunk.input).or_insert(end);
            *latest = (*latest).max(end);
        }
        let held = chunk.held.take();
        if self.held_from.contains_key(&chunk.input) {
            self.summary.usage.held += chunk.lines + held.map_or(0, |tail| tail.messages);
            return Ok(());
        }
        if let Some(tail) = held {
            self.held_from.insert(chunk.input, tail.from);
            self.summary.usage.held += tail.messages;
        }
        let counts = &mut self.summary.usage;
        counts.lines += chunk.lines;
        counts.blank += chunk.blank;
        counts.dead_letters += chunk.rejected.len() as u64;
        for line in chunk.rejected {
            self.dead_letter(DeadLetter {
                source: format!("{input_name}{}", line.line),
                rejection: line.rejection,
                payload: chunk.data[line.span].to_vec(),
                key: chunk.keys.get(line.line).map(<[u8]>::to_vec),
                input: LetterInput::Usage,
            });
        }
        let usage_rows = chunk.usage.batch.num_rows();
        let quarantine_rows = chunk.quarantine.batch.num_rows();
        let mut usage_dropped = Dropped(None);
        let mut quarantine_dropped = Dropped(None);
        for (i, record) in chunk.records.iter().enumerate() {
            if let Some(ahead) = chunk.records.get(i + PREFETCH_AHEAD) {
                self.dedup.prefetch(ahead.id);
            }
            self.in_lake.records.cover(record.start_day)?;
            let (keep_usage, keep_quarantine) =
                self.decide(input_name, (&chunk.data, &chunk.keys), record);
            let usage_slices = &chunk.usage.slices[record.usage.clone()];
            let quarantine_slices = &chunk.quarantine.slices[record.quarantine.clone()];
            if keep_usage {
                self.count_usage(usage_slices, record.currency);
            } else {
                for slice in usage_slices {
                    usage_dropped.mark(usage_rows, slice.row);
                }
            }
            if keep_quarantine {
                self.count_quarantine(quarantine_slices, record.currency);
            } else {
                for slice in quarantine_slices {
                    quarantine_dropped.mark(quarantine_rows, slice.row);
                }
            }
        }
        self.gather_usage(chunk.usage, &usage_dropped);
        for piece in quarantine_dropped.kept_pieces(&chunk.quarantine.batch, 0..quarantine_rows) {
            self.quarantine_rows += piece.num_rows();
            self.quarantine.push(piece);
        }
        self.flush(false)
    }

    /// Whether the record's usage and quarantine rows are written; counts it either way.
    fn decide(
        &mut self,
        input_name: &str,
        (data, keys): (&[u8], &MessageKeys),
        record: &RecordRows,
    ) -> (bool, bool) {
        let counts = &mut self.summary.usage;
        match self
            .dedup
            .observe_fingerprint(record.id, record.fingerprint)
        {
            Seen::First => {}
            Seen::Duplicate => {
                counts.duplicates += 1;
                return (false, false);
            }
            Seen::ConflictingDuplicate => {
                counts.duplicates += 1;
                counts.conflicting_duplicates += 1;
                let letter = DeadLetter {
                    source: format!("{input_name}{}", record.line),
                    rejection: Rejection::new(
                        Reason::ConflictingDuplicate,
                        format!(
                            "record id {} was already ingested with different content",
                            record.id
                        ),
                    ),
                    payload: data[record.span.clone()].to_vec(),
                    key: keys.get(record.line).map(<[u8]>::to_vec),
                    input: LetterInput::Usage,
                };
                self.dead_letter(letter);
                return (false, false);
            }
        }
        let id = record.id.0;
        let known = &self.in_lake.records;
        let (in_usage, in_quarantine) = (known.usage.contains(id), known.quarantine.contains(id));
        // Only a killed pass leaves a stored record without all its rows: otherwise a record
        // stored in either table is a duplicate, even if the events now route it elsewhere
        // (the corrections move the stored rows).
        let (keep_usage, keep_quarantine) =
            if self.in_lake.unfinished.covers(input_name, record.line) {
                (
                    !record.usage.is_empty() && !in_usage,
                    !record.quarantine.is_empty() && !in_quarantine,
                )
            } else {
                let stored = in_usage || in_quarantine;
                // A cut record's quarantined slices without its usage slices: a pass was
                // stopped or refused after its `quarantine` commit (with several writers,
                // another may have closed since, so the fence cannot tell).
                let half = in_quarantine && !in_usage && known.cut_in_quarantine.contains(id);
                (
                    (!stored || half) && !record.usage.is_empty(),
                    !stored && !record.quarantine.is_empty(),
                )
            };
        let counts = &mut self.summary.usage;
        if !keep_usage && !keep_quarantine {
            counts.duplicates += 1;
            counts.already_in_lake += 1;
            return (false, false);
        }
        counts.records += 1;
        counts.quarantine_only += u64::from(keep_quarantine && !keep_usage);
        counts.total_volume += record.volume_total;
        counts.total_cost.add(record.currency, record.cost);
        (keep_usage, keep_quarantine)
    }

    fn count_usage(&mut self, slices: &[SliceRow<crate::domain::WorkspaceId>], currency: Currency) {
        self.summary.usage.slices_attributed += slices.len() as u64;
        for (i, slice) in slices.iter().enumerate() {
            let totals = self.summary.workspaces.entry(slice.key.get()).or_default();
            totals.slices += 1;
            totals.volume_total += slice.total;
            totals.cost.add(currency, slice.cost);
            // A record cut into several slices in one Workspace counts once there.
            if !slices[..i].iter().any(|s| s.key == slice.key) {
                totals.records += 1;
            }
        }
    }

    fn count_quarantine(
        &mut self,
        slices: &[SliceRow<crate::attribute::QuarantineReason>],
        currency: Currency,
    ) {
        for slice in slices {
            let totals: &mut QuarantineTotals = self
                .summary
                .quarantine
                .entry(slice.key.as_str())
                .or_default();
            totals.slices += 1;
            totals.volume_total += slice.total;
            totals.cost.add(currency, slice.cost);
        }
    }

    /// Gathers the chunk's kept usage rows by Workspace day.
    fn gather_usage(&mut self, usage: UsageBlock, dropped: &Dropped) {
        if usage.batch.num_rows() == 0 {
            return;
        }
        let batch = self.usage.add_batch(usage.batch);
        for (day, range) in usage.days {
            for run in dropped.kept_runs(range) {
                self.usage.push(day, batch, run);
            }
        }
    }

    /// Work that can be done before the first chunk arrives.
    pub fn prepare(&mut self) {
        self.dedup.touch_pages();
    }

    /// Dead letters already in the lake (same source) are not written again.
    pub fn dead_letter(&mut self, letter: DeadLetter) {
        if self.in_lake.dead_letters.contains(&letter.source) {
            return;
        }
        self.dead_letters.append(&letter);
    }

    /// Sends what has gathered to the lake writer: full buffers, or everything at the end.
    fn flush(&mut self, at_end: bool) -> Result<(), IngestError> {
        let (usage_rows, quarantine_rows, rows) = if at_end {
            (1, 1, 1)
        } else {
            (USAGE_BUFFER_ROWS, QUARANTINE_BUFFER_ROWS, BATCH_ROWS)
        };
        if self.usage.len() >= usage_rows {
            let (batches, rows) = self.usage.drain(usage_iccid_column());
            // The last rows have nothing left to be encoded beside: cut into two row groups
            // per encoder thread (each a contiguous run of the clustered order), they keep
            // every encoder busy to the end, also when one is still encoding the rows before.
            let parts = if at_end { 2 * encoder_threads() } else { 1 };
            for rows in split_evenly(rows, parts, FINAL_PART_ROWS) {
                let batches = batches.clone();
                self.send(Output::Usage(RowGroupRows::Picked { batches, rows }))?;
            }
        }
        if self.quarantine_rows >= quarantine_rows {
            self.quarantine_rows = 0;
            let pieces = std::mem::take(&mut self.quarantine);
            self.send(Output::Quarantine(pieces))?;
        }
        if self.dead_letters.len() >= rows {
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

    /// By input: the offset from which it was held for the events.
    pub fn held_from(&self) -> &BTreeMap<usize, u64> {
        &self.held_from
    }

    /// By input: the latest end of a valid record read.
    pub fn latest_end(&self) -> &BTreeMap<usize, UtcMillis> {
        &self.latest_end
    }

    /// See [`UnfinishedPass::quarantine_positions`].
    pub fn quarantine_positions(&self, read_up_to: &[(String, i64)]) -> Vec<(String, i64)> {
        self.in_lake.unfinished.quarantine_positions(read_up_to)
    }

    pub fn finish(mut self) -> Result<RunSummary, IngestError> {
        self.flush(true)?;
        Ok(self.summary)
    }
}

/// The fewest rows the last `usage` rows are cut to (smaller row groups compress worse).
const FINAL_PART_ROWS: usize = 16 * 1024;

/// `rows` cut into at most `parts` contiguous runs of nearly equal length (they differ by
/// fewer rows than there are runs), and into no more runs than leave about `fewest` rows
/// in each.
fn split_evenly<T>(mut rows: Vec<T>, parts: usize, fewest: usize) -> Vec<Vec<T>> {
    let parts = parts.clamp(1, (rows.len() / fewest.max(1)).max(1));
    let each = rows.len().div_ceil(parts);
    let mut cut = Vec::with_capacity(parts);
    while rows.len() > each {
        let rest = rows.split_off(each);
        cut.push(std::mem::replace(&mut rows, rest));
    }
    cut.push(rows);
    cut
}

/// Where `usage` rows hold their ICCID.
fn usage_iccid_column() -> usize {
    crate::lake::schema::USAGE
        .index_of("iccid")
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::{split_evenly, Dropped};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_evenly_keeps_every_row_in_order(len in 0usize..2000, parts in 0usize..9, fewest in 0usize..300) {
            let rows: Vec<usize> = (0..len).collect();
            let cut = split_evenly(rows.clone(), parts, fewest);
            prop_assert!(cut.len() <= parts.max(1));
            prop_assert_eq!(cut.concat(), rows);
            if cut.len() > 1 {
                let shortest = cut.iter().map(Vec::len).min().unwrap_or(0);
                let longest = cut.iter().map(Vec::len).max().unwrap_or(0);
                prop_assert!(shortest >= fewest.max(1) || shortest + cut.len() > longest);
                prop_assert!(longest - shortest <= cut.len());
            }
        }
    }

    proptest! {
        #[test]
        fn kept_runs_are_exactly_the_rows_not_dropped(
            dropped in proptest::collection::vec(any::<bool>(), 0..60),
            cut in any::<proptest::sample::Index>(),
            len in 0usize..60,
        ) {
            let rows = dropped.len();
            let start = if rows == 0 { 0 } else { cut.index(rows) };
            let end = (start + len).min(rows);
            let mut marks = Dropped(None);
            for (row, _) in dropped.iter().enumerate().filter(|(_, d)| **d) {
                marks.mark(rows, row);
            }
            let runs = marks.kept_runs(start..end);
            let from_runs: Vec<usize> = runs.iter().flat_map(Clone::clone).collect();
            let kept: Vec<usize> = (start..end).filter(|row| !dropped[*row]).collect();
            prop_assert_eq!(from_runs, kept);
            // Maximal: two runs never touch, and none is empty.
            prop_assert!(runs.iter().all(|run| !run.is_empty()));
            prop_assert!(runs.windows(2).all(|pair| pair[0].end < pair[1].start));
        }
    }
}
