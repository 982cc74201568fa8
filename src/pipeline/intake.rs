//! One events pass's intake: each decoded line becomes a new SIM event, a directory event,
//! a duplicate or a dead letter; then the directory events are applied (refusing transfers
//! their actors may not make) and the ownership book is built over stored and new SIM
//! events (refusing new events that contradict it).

use std::collections::{BTreeMap, HashSet};

use ahash::{AHashMap, AHashSet};

use super::arrival::Arrival;
use super::corrections::TouchedSims;
use super::stored::StoredSimEvents;
use super::{EventCounts, IngestError};
use crate::attribute::{OwnershipBook, SequencedEvent};
use crate::decode::IncomingEvent;
use crate::directory::StoredDirectory;
use crate::domain::{DirectoryEvent, EventKind, LifecycleEvent, UtcMillis};
use crate::domain::{Reason, Rejection};
use crate::source::{Chunk, KEPT_BYTES};
use crate::tables::dead_letters::{DeadLetter, LetterInput};
use crate::tables::directory::DirectoryRows;
use crate::tables::sim_events::EventRows;

/// A decoded line, as [`super::events`] decodes them off the runtime: `None` for a blank
/// line.
pub(super) type Decoded = Option<Result<IncomingEvent, Rejection>>;

/// The pass's SIM events (stored ones first, new ones numbered after them) and what the
/// pass's lines became so far.
pub(super) struct Intake {
    all: Vec<SequencedEvent>,
    /// The Kafka partition each of `all` was read from (`None`: a file, or unknown).
    partitions: Vec<Option<i32>>,
    /// The highest number among the stored events.
    numbered_through: i64,
    /// The event ids of `all`, built when the first new SIM event arrives: a pass without
    /// any (most passes, and a file ingest of usage alone) neither hashes nor copies the
    /// ids of every stored event.
    known_ids: Option<AHashSet<String>>,
    /// The new SIM events, by number.
    arrivals: AHashMap<i64, Arrival>,
    directory_arrivals: Vec<(DirectoryEvent, Arrival)>,
    touched: TouchedSims,
    dead_letters: Vec<DeadLetter>,
    counts: EventCounts,
    /// The Kafka partitions that delivered messages, with the latest SIM event time read
    /// from each.
    latest: BTreeMap<i32, Option<UtcMillis>>,
}

/// One line of the events input with where it came from.
struct Line<'a> {
    source: String,
    bytes: &'a [u8],
    key: Option<Vec<u8>>,
    partition: Option<i32>,
}

impl Line<'_> {
    fn arrival(&self) -> Arrival {
        Arrival {
            source: self.source.clone(),
            payload: self.bytes.to_vec(),
            key: self.key.clone(),
        }
    }
}

/// What the pass decided, once the directory and the ownership book had their say.
pub(super) struct Settled {
    pub book: OwnershipBook,
    /// The accepted new SIM events, as `sim_events` rows.
    pub rows: EventRows,
    pub directory_rows: DirectoryRows,
    pub stored_after: StoredSimEvents,
    pub touched: TouchedSims,
    pub dead_letters: Vec<DeadLetter>,
    pub counts: EventCounts,
    pub latest: BTreeMap<i32, Option<UtcMillis>>,
}

impl Intake {
    pub(super) fn new(stored: StoredSimEvents) -> Self {
        Intake {
            all: stored.events,
            partitions: stored.partitions,
            numbered_through: stored.numbered_through,
            known_ids: None,
            arrivals: AHashMap::new(),
            directory_arrivals: Vec::new(),
            touched: TouchedSims::new(),
            dead_letters: Vec::new(),
            counts: EventCounts::default(),
            latest: BTreeMap::new(),
        }
    }

    /// Takes every line of `chunks` with its decoding (`decoded`, in the same order).
    /// Directory events already in `directory` are duplicates.
    pub(super) fn take_lines(
        &mut self,
        read: &EventsRead,
        chunks: &[(usize, Chunk)],
        decoded: Vec<Decoded>,
        directory: &mut StoredDirectory,
    ) -> Result<(), IngestError> {
        let mut decoded = decoded.into_iter();
        for (input, chunk) in chunks {
            let name = &read.prefixes[*input];
            let partition = read.partitions.get(*input).copied();
            if let Some(p) = partition {
                self.latest.entry(p).or_insert(None);
            }
            for (line, bytes) in chunk.records() {
                self.counts.lines += 1;
                let missing = || {
                    IngestError::Internal(format!("events line {line} of {name} was not decoded"))
                };
                let Some(decoded) = decoded.next().ok_or_else(missing)? else {
                    self.counts.blank += 1;
                    continue;
                };
                let line = Line {
                    source: format!("{name}{line}"),
                    bytes,
                    key: chunk.keys.get(line).map(<[u8]>::to_vec),
                    partition,
                };
                self.take(decoded, line, directory);
            }
        }
        Ok(())
    }

    fn take(
        &mut self,
        decoded: Result<IncomingEvent, Rejection>,
        line: Line<'_>,
        directory: &mut StoredDirectory,
    ) {
        match decoded {
            Ok(IncomingEvent::Directory(event)) => {
                if directory.event_ids.insert(event.event_id.clone()) {
                    self.directory_arrivals.push((event, line.arrival()));
                } else {
                    self.counts.duplicates += 1;
                }
            }
            Ok(IncomingEvent::Sim(event)) => self.take_sim_event(event, line),
            Err(rejection) => {
                self.counts.dead_letters += 1;
                let kept = match rejection.reason {
                    Reason::LineTooLong => &line.bytes[..line.bytes.len().min(KEPT_BYTES)],
                    _ => line.bytes,
                };
                self.dead_letters.push(DeadLetter {
                    source: line.source,
                    rejection,
                    payload: kept.to_vec(),
                    key: line.key,
                    input: LetterInput::Events,
                });
            }
        }
    }

    fn take_sim_event(&mut self, event: LifecycleEvent, line: Line<'_>) {
        if let Some(p) = line.partition {
            let latest = self.latest.entry(p).or_insert(None);
            *latest = (*latest).max(Some(event.at));
        }
        touch(&mut self.touched, &event);
        // An event read again (a producer's retry, or a run that stopped between its
        // commits) still names its SIM: the corrections it caused may not be written.
        let known_ids = self.known_ids.get_or_insert_with(|| {
            (self.all.iter())
                .map(|e| e.event.event_id.clone())
                .collect()
        });
        if !known_ids.insert(event.event_id.clone()) {
            self.counts.duplicates += 1;
            return;
        }
        let seq = self.numbered_through + 1 + self.arrivals.len() as i64;
        self.arrivals.insert(seq, line.arrival());
        self.all.push(SequencedEvent { seq, event });
        self.partitions.push(line.partition);
    }

    /// Applies the pass's directory events (see [`super::directory::apply`]) and drops the
    /// new transfers it refused, as dead letters.
    pub(super) fn apply_directory(
        &mut self,
        directory: &mut StoredDirectory,
        now: UtcMillis,
    ) -> DirectoryRows {
        let outcome = super::directory::apply(
            directory,
            std::mem::take(&mut self.directory_arrivals),
            &self.all,
            &self.arrivals,
            now,
            &mut self.counts,
            &mut self.dead_letters,
        );
        let mut refused = AHashSet::new();
        for (seq, rejection) in outcome.refused_transfers {
            if let Some(arrival) = self.arrivals.remove(&seq) {
                self.counts.dead_letters += 1;
                self.dead_letters.push(arrival.into_dead_letter(rejection));
                refused.insert(seq);
            }
        }
        if !refused.is_empty() {
            let kept = |(e, _): &(SequencedEvent, Option<i32>)| !refused.contains(&e.seq);
            let all = std::mem::take(&mut self.all);
            let partitions = std::mem::take(&mut self.partitions);
            (self.all, self.partitions) = all.into_iter().zip(partitions).filter(kept).unzip();
        }
        outcome.rows
    }

    /// Builds the ownership book over every SIM event; new events it refuses become dead
    /// letters (unless the lake holds them as such already), the rest `sim_events` rows.
    pub(super) fn settle(
        mut self,
        directory_rows: DirectoryRows,
        dead_letters_in_lake: &HashSet<String>,
        now: UtcMillis,
    ) -> Settled {
        let (book, rejected) = OwnershipBook::build(&self.all);
        let mut refused = AHashSet::new();
        for (event, rejection) in rejected {
            match self.arrivals.get(&event.seq) {
                Some(arrival) => {
                    self.counts.dead_letters += 1;
                    refused.insert(event.seq);
                    self.dead_letters
                        .push(arrival.clone().into_dead_letter(rejection));
                }
                None => tracing::warn!(event_id = %event.event.event_id, %rejection,
                    "an event accepted earlier conflicts with events that arrived since"),
            }
        }
        self.dead_letters
            .retain(|d| !dead_letters_in_lake.contains(&d.source));
        let mut rows = EventRows::new(now);
        for event in &self.all {
            if let Some(arrival) = self.arrivals.get(&event.seq) {
                if !refused.contains(&event.seq) {
                    rows.append(event, &arrival.source);
                    self.counts.accepted += 1;
                }
            }
        }
        // What a load from the lake gives once this pass commits: the stored events (even
        // those the new ones now conflict with) and the new ones accepted, numbered on from
        // the stored ones only: numbers of refused events are in no stored event.
        let (kept, kept_partitions) = match refused.is_empty() {
            true => (self.all, self.partitions),
            false => (self.all.into_iter().zip(self.partitions))
                .filter(|(e, _)| !refused.contains(&e.seq))
                .unzip(),
        };
        let stored_after =
            StoredSimEvents::new(kept, kept_partitions).numbered_after(self.numbered_through);
        Settled {
            book,
            rows,
            directory_rows,
            stored_after,
            touched: self.touched,
            dead_letters: self.dead_letters,
            counts: self.counts,
            latest: self.latest,
        }
    }
}

/// Notes the SIM of an event that can change who owned it, or whether it is known.
fn touch(touched: &mut TouchedSims, event: &LifecycleEvent) {
    match event.kind {
        EventKind::Attached { .. } | EventKind::Detached { .. } => {}
        EventKind::Registered { .. }
        | EventKind::Transferred { .. }
        | EventKind::StatusChanged { .. } => {
            touched
                .entry(event.iccid)
                .or_default()
                .insert(event.event_id.clone());
        }
    }
}

/// What the events source says of its inputs once read to the end.
pub(super) struct EventsRead {
    pub prefixes: Vec<String>,
    pub partitions: Vec<i32>,
    pub resume_points: Vec<(String, i64)>,
}
