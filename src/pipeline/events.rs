use std::collections::{BTreeMap, BTreeSet, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use super::{EventCounts, IngestError};
use crate::attribute::{OwnershipBook, SequencedEvent};
use crate::decode::{decode_any_event, IncomingEvent, InputLimits, Reason, Rejection};
use crate::directory::{load_directory, LinkLimits};
use crate::domain::{
    DeviceId, EventKind, Iccid, LifecycleEvent, SimStatus, UtcMillis, WorkspaceId,
};
use crate::lake::{utf8_column, Claim, Lake, LakeError, LakeTable, TableAppender};
use crate::sink::{DeadLetter, EventRows, LetterInput};
use crate::source::{Chunk, ChunkSource, SourceError, KEPT_BYTES};

/// The SIM lifecycle events the lake holds, as a pass that committed left them. A follower
/// keeps them from one pass to the next while its partitions stay the same, so a pass reads
/// only its new events; on (re)assignment they are loaded from the lake again.
#[derive(Clone, Debug, Default)]
pub struct StoredSimEvents {
    events: Vec<SequencedEvent>,
    /// By event: the partition of the events topic it was read from (`None`: a file, or
    /// not known because the events were loaded in full).
    partitions: Vec<Option<i32>>,
    /// New events are numbered after this `seq`: the largest of the events' and of the
    /// `through_seq` of the snapshots they were loaded from (an empty partition's snapshot
    /// holds no event, yet its later events must be numbered after it). Never more than
    /// the largest `seq` stored in the lake, so a run that loads every stored event numbers
    /// after it too.
    numbered_through: i64,
    /// The `sim_events` version these are the events of, once a pass has committed (or
    /// read) it: kept events are used again only while no other writer has committed since.
    version: Option<i64>,
}

impl StoredSimEvents {
    pub(super) fn new(events: Vec<SequencedEvent>, partitions: Vec<Option<i32>>) -> Self {
        let numbered_through = events.iter().map(|e| e.seq).max().unwrap_or(-1);
        StoredSimEvents {
            events,
            partitions,
            numbered_through,
            version: None,
        }
    }

    /// The same events, as `sim_events` stands at `version`.
    pub(super) fn at_version(mut self, version: Option<i64>) -> Self {
        self.version = version;
        self
    }

    /// The same events, numbered on after `seq` at least.
    pub(super) fn numbered_after(mut self, seq: i64) -> Self {
        self.numbered_through = self.numbered_through.max(seq);
        self
    }

    /// See [`StoredSimEvents::numbered_through`].
    pub(super) fn numbered_through(&self) -> i64 {
        self.numbered_through
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events read from `partition` of the events topic.
    pub(super) fn of_partition(&self, partition: i32) -> impl Iterator<Item = &SequencedEvent> {
        self.events
            .iter()
            .zip(&self.partitions)
            .filter(move |(_, p)| **p == Some(partition))
            .map(|(event, _)| event)
    }
}

/// Where a pass's stored SIM events come from.
#[derive(Default)]
pub enum StoredFrom {
    /// Every event in the lake.
    #[default]
    Lake,
    /// Those the previous pass of this process left, if `sim_events` is still at the version
    /// they are of, or if every commit since is a pass of other partitions (by the claim of
    /// this process's passes); otherwise (another writer committed events since) from the
    /// second.
    Kept(StoredSimEvents, Box<StoredFrom>, Option<Claim>),
    /// The snapshots of these partitions of the events topic, plus the events stored after
    /// them (and every event not read from the topic).
    Snapshot { topic: String, partitions: Vec<i32> },
}

pub(super) struct EventPass {
    pub book: OwnershipBook,
    /// The stored events once this pass is committed (see [`StoredSimEvents`]).
    pub stored_after: StoredSimEvents,
    /// Every SIM named by an ownership event read in this pass (new or already stored),
    /// with those events' ids: their stored usage is checked against the book.
    pub touched: TouchedSims,
    /// Where the next run resumes, to be recorded with the run's last commit.
    pub resume_points: Vec<(String, i64)>,
    pub appender: TableAppender,
    /// `workspaces` and `memberships`, in that order.
    pub directory_appenders: [TableAppender; 2],
    pub dead_letters: Vec<DeadLetter>,
    pub counts: EventCounts,
    /// The Kafka partitions that delivered messages, with the latest SIM event time read
    /// from each (see [`super::hold`]).
    pub arrivals: BTreeMap<i32, Option<UtcMillis>>,
    /// Whether the SIM events kept from the last pass were stale (another writer committed
    /// to `sim_events` since) and were loaded from the lake again.
    pub reloaded: bool,
}

/// SIMs whose stored usage may need correcting, with the ids of the events that name them.
pub(super) type TouchedSims = BTreeMap<Iccid, BTreeSet<String>>;

/// A new event with where it came from, until it is accepted or rejected.
pub(super) struct Arrival {
    pub source: String,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
}

impl Arrival {
    /// The arrival as a dead letter of the events input.
    pub(super) fn into_dead_letter(self, rejection: Rejection) -> DeadLetter {
        DeadLetter {
            source: self.source,
            rejection,
            payload: self.payload,
            key: self.key,
            input: LetterInput::Events,
        }
    }
}

/// Where one ingest run's events go.
pub(super) struct EventTargets<'a> {
    pub appender: TableAppender,
    pub directory_appenders: [TableAppender; 2],
    pub link_limits: LinkLimits,
    pub input_limits: &'a InputLimits,
    pub dead_letters_in_lake: &'a HashSet<String>,
    pub stored: StoredFrom,
}

/// Whether `stored` still holds every event its passes read: no commit to `sim_events`
/// since its version may hold events of the partitions `claim` names.
async fn still_current(
    appender: &TableAppender,
    stored: &StoredSimEvents,
    claim: &Claim,
) -> Result<bool, IngestError> {
    let Some(version) = stored.version else {
        return Ok(false);
    };
    let since = appender.commits_since(version).await?;
    Ok(!since.iter().any(|commit| claim.may_share_rows(commit)))
}

/// The stored SIM events from the lake: all of them, or a snapshot's.
async fn load_stored(lake: &Lake, from: StoredFrom) -> Result<StoredSimEvents, IngestError> {
    Ok(match from {
        StoredFrom::Snapshot { topic, partitions } => {
            super::snapshot::load(lake, &topic, &partitions).await?
        }
        StoredFrom::Lake | StoredFrom::Kept(..) => {
            let events = load_stored_events(lake).await?;
            let partitions = vec![None; events.len()];
            StoredSimEvents::new(events, partitions)
        }
    })
}

pub(super) async fn run(
    lake: &Lake,
    targets: EventTargets<'_>,
    source: Box<dyn ChunkSource>,
    now: UtcMillis,
) -> Result<EventPass, IngestError> {
    let EventTargets {
        mut appender,
        mut directory_appenders,
        link_limits,
        input_limits,
        dead_letters_in_lake,
        stored,
    } = targets;
    let mut reloaded = false;
    let stored = match stored {
        StoredFrom::Kept(stored, _, _) if stored.version == appender.read_version() => stored,
        StoredFrom::Kept(stored, _, Some(claim))
            if still_current(&appender, &stored, &claim).await? =>
        {
            stored.at_version(appender.read_version())
        }
        StoredFrom::Kept(_, otherwise, _) => {
            tracing::info!("another writer stored SIM events since the last pass: loading them");
            reloaded = true;
            load_stored(lake, *otherwise).await?
        }
        other => load_stored(lake, other).await?,
    };
    let StoredSimEvents {
        events: stored,
        partitions: mut all_partitions,
        numbered_through,
        version: _,
    } = stored;
    let mut directory = load_directory(lake, link_limits).await?;
    let mut directory_arrivals = Vec::new();
    let mut known_ids: HashSet<String> = stored.iter().map(|e| e.event.event_id.clone()).collect();
    let mut next_seq = numbered_through + 1;
    let mut counts = EventCounts::default();
    let mut touched = TouchedSims::new();
    let mut dead_letters = Vec::new();
    let mut arrivals = std::collections::HashMap::new();
    let mut all = stored;

    let input_limits = input_limits.clone();
    let (read, chunks, decoded) = tokio::task::spawn_blocking(move || {
        let (read, chunks) = read_all(source)?;
        let decoded = decode_lines(&chunks, &input_limits)?;
        Ok::<_, IngestError>((read, chunks, decoded))
    })
    .await
    .map_err(|e| IngestError::Internal(format!("events reader failed: {e}")))??;
    let mut decoded = decoded.into_iter();
    let names = read.prefixes;
    let mut arrivals_by_partition = BTreeMap::new();
    for (input, chunk) in chunks {
        let name = &names[input];
        let mut latest = read
            .partitions
            .get(input)
            .map(|p| arrivals_by_partition.entry(*p).or_insert(None));
        for (line, bytes) in chunk.records() {
            counts.lines += 1;
            let decoded = decoded.next().ok_or_else(|| {
                IngestError::Internal(format!("events line {line} of {name} was not decoded"))
            })?;
            let Some(decoded) = decoded else {
                counts.blank += 1;
                continue;
            };
            let source = format!("{name}{line}");
            let key = chunk.keys.get(line).map(<[u8]>::to_vec);
            if let (Ok(IncomingEvent::Sim(event)), Some(latest)) = (&decoded, latest.as_mut()) {
                **latest = (**latest).max(Some(event.at));
            }
            match decoded {
                Ok(IncomingEvent::Directory(event)) => {
                    if directory.event_ids.insert(event.event_id.clone()) {
                        let arrival = Arrival {
                            source,
                            payload: bytes.to_vec(),
                            key,
                        };
                        directory_arrivals.push((event, arrival));
                    } else {
                        counts.duplicates += 1;
                    }
                }
                // An event read again (a producer's retry, or a run that stopped between its
                // commits) still names its SIM: the corrections it caused may not be written.
                Ok(IncomingEvent::Sim(event)) if !known_ids.insert(event.event_id.clone()) => {
                    touch(&mut touched, &event);
                    counts.duplicates += 1
                }
                Ok(IncomingEvent::Sim(event)) => {
                    touch(&mut touched, &event);
                    arrivals.insert(
                        next_seq,
                        Arrival {
                            source,
                            payload: bytes.to_vec(),
                            key,
                        },
                    );
                    all.push(SequencedEvent {
                        seq: next_seq,
                        event,
                    });
                    all_partitions.push(read.partitions.get(input).copied());
                    next_seq += 1;
                }
                Err(rejection) => {
                    counts.dead_letters += 1;
                    let kept = match rejection.reason {
                        Reason::LineTooLong => &bytes[..bytes.len().min(KEPT_BYTES)],
                        _ => bytes,
                    };
                    dead_letters.push(DeadLetter {
                        source,
                        rejection,
                        payload: kept.to_vec(),
                        key,
                        input: LetterInput::Events,
                    });
                }
            }
        }
    }

    let directory_outcome = super::directory::apply(
        &mut directory,
        directory_arrivals,
        &all,
        &arrivals,
        now,
        &mut counts,
        &mut dead_letters,
    );
    let refused: HashSet<i64> = (directory_outcome.refused_transfers.iter())
        .map(|(seq, _)| *seq)
        .collect();
    for (seq, rejection) in directory_outcome.refused_transfers {
        if let Some(arrival) = arrivals.remove(&seq) {
            counts.dead_letters += 1;
            dead_letters.push(arrival.into_dead_letter(rejection));
        }
    }
    let (all, all_partitions): (Vec<_>, Vec<_>) = all
        .into_iter()
        .zip(all_partitions)
        .filter(|(e, _)| !refused.contains(&e.seq))
        .unzip();
    let (book, rejected) = OwnershipBook::build(all.clone());
    let rejected_seqs: HashSet<i64> = rejected.iter().map(|(e, _)| e.seq).collect();
    for (event, rejection) in rejected {
        match arrivals.get(&event.seq) {
            Some(arrival) => {
                counts.dead_letters += 1;
                dead_letters.push(DeadLetter {
                    source: arrival.source.clone(),
                    rejection,
                    payload: arrival.payload.clone(),
                    key: arrival.key.clone(),
                    input: LetterInput::Events,
                });
            }
            None => tracing::warn!(event_id = %event.event.event_id, %rejection,
                "an event accepted earlier conflicts with events that arrived since"),
        }
    }
    let directory_rows = directory_outcome.rows;
    dead_letters.retain(|d| !dead_letters_in_lake.contains(&d.source));

    let mut rows = EventRows::new(now);
    for event in all
        .iter()
        .filter(|e| arrivals.contains_key(&e.seq) && !rejected_seqs.contains(&e.seq))
    {
        rows.append(event, &arrivals[&event.seq].source);
        counts.accepted += 1;
    }
    // What a load from the lake gives once this pass commits: the stored events (even
    // those the new ones now conflict with) and the new ones accepted.
    let (kept, kept_partitions) = all
        .into_iter()
        .zip(all_partitions)
        .filter(|(e, _)| !(arrivals.contains_key(&e.seq) && rejected_seqs.contains(&e.seq)))
        .unzip();
    // Not after `next_seq`: numbers of rejected events are in no stored event.
    let stored_after = StoredSimEvents::new(kept, kept_partitions).numbered_after(numbered_through);
    if !rows.is_empty() {
        appender.write(rows.finish()).await?;
    }
    let (workspace_rows, membership_rows) = directory_rows.finish();
    for (appender, batch) in directory_appenders
        .iter_mut()
        .zip([workspace_rows, membership_rows])
    {
        if batch.num_rows() > 0 {
            appender.write(batch).await?;
        }
    }
    Ok(EventPass {
        book,
        stored_after,
        touched,
        resume_points: read.resume_points,
        appender,
        directory_appenders,
        dead_letters,
        counts,
        arrivals: arrivals_by_partition,
        reloaded,
    })
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
struct EventsRead {
    prefixes: Vec<String>,
    partitions: Vec<i32>,
    resume_points: Vec<(String, i64)>,
}

/// Every chunk of the source, read off the async runtime (a Kafka source blocks on the
/// broker); the events pass needs all of them before any usage can be attributed.
fn read_all(
    mut source: Box<dyn ChunkSource>,
) -> Result<(EventsRead, Vec<(usize, Chunk)>), SourceError> {
    let mut chunks = Vec::new();
    while let Some(chunk) = source.next_chunk()? {
        chunks.push(chunk);
    }
    let read = EventsRead {
        prefixes: source.prefixes(),
        partitions: source.partitions(),
        resume_points: source.resume_points(),
    };
    Ok((read, chunks))
}

/// Every line of the chunks decoded (`None`: a blank line), in order. On all cores: the
/// usage pass waits for the events pass, and decoding is most of it.
fn decode_lines(
    chunks: &[(usize, Chunk)],
    limits: &InputLimits,
) -> Result<Vec<Option<Result<IncomingEvent, Rejection>>>, IngestError> {
    let lines: Vec<(&[u8], Option<u64>)> = chunks
        .iter()
        .flat_map(|(_, chunk)| {
            (chunk.records()).map(|(line, bytes)| (bytes, limits.too_long(chunk, line, bytes)))
        })
        .collect();
    let decode = |(bytes, cut): &(&[u8], Option<u64>)| {
        let blank = bytes.iter().all(u8::is_ascii_whitespace);
        (!blank).then(|| match cut {
            Some(length) => Err(Rejection::line_too_long(*length, limits.max_line_bytes)),
            None => decode_any_event(bytes).and_then(|event| limits.event(event)),
        })
    };
    // A follower's pass often brings a handful of events: not worth starting threads for.
    const FEWEST_FOR_THREADS: usize = 4096;
    if lines.len() < FEWEST_FOR_THREADS {
        return Ok(lines.iter().map(decode).collect());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = lines.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = lines
            .chunks(part)
            .map(|part| scope.spawn(move || part.iter().map(decode).collect::<Vec<_>>()))
            .collect();
        let mut decoded = Vec::with_capacity(lines.len());
        for part in parts {
            let part = part
                .join()
                .map_err(|_| IngestError::Internal("an events decoder panicked".into()))?;
            decoded.extend(part);
        }
        Ok(decoded)
    })
}

/// The columns [`events_from_batches`] reads, in its order.
pub(crate) const STORED_EVENT_COLUMNS: &str = "event_id, event_type, event_time, iccid, \
     workspace_id, source_workspace_id, target_workspace_id, status, seq, device_id";

/// The events already in the lake, as the ownership book needs them.
pub(crate) async fn load_stored_events(lake: &Lake) -> Result<Vec<SequencedEvent>, LakeError> {
    let batches = lake
        .select(
            LakeTable::SimEvents,
            &format!("SELECT {STORED_EVENT_COLUMNS} FROM t"),
        )
        .await?;
    events_from_batches(&batches).map_err(|detail| LakeError::Corrupt {
        table: LakeTable::SimEvents.name(),
        detail,
    })
}

/// Events from rows of [`STORED_EVENT_COLUMNS`].
pub(crate) fn events_from_batches(batches: &[RecordBatch]) -> Result<Vec<SequencedEvent>, String> {
    let mut events = Vec::new();
    for batch in batches {
        events.extend(events_from_batch(batch)?);
    }
    Ok(events)
}

fn events_from_batch(batch: &RecordBatch) -> Result<Vec<SequencedEvent>, String> {
    let text = |i: usize| utf8_column(batch, i);
    let int = |i: usize| {
        batch
            .column(i)
            .as_primitive_opt::<Int64Type>()
            .ok_or(format!("column {i} is not BIGINT"))
    };
    let (ids, types, iccids, statuses) = (&text(0)?, &text(1)?, &text(3)?, &text(7)?);
    let devices = &text(9)?;
    let device = |row: usize| {
        devices
            .is_valid(row)
            .then(|| DeviceId::parse(devices.value(row)).ok())
            .flatten()
            .ok_or(format!("row {row}: missing device"))
    };
    let times = batch
        .column(2)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("event_time is not a timestamp")?;
    let (ws, source_ws, target_ws, seqs) = (int(4)?, int(5)?, int(6)?, int(8)?);
    let workspace = |col: &arrow::array::Int64Array, row: usize| {
        (col.is_valid(row))
            .then(|| WorkspaceId::new(col.value(row)))
            .flatten()
            .ok_or(format!("row {row}: missing Workspace"))
    };
    (0..batch.num_rows())
        .map(|row| {
            let kind = match types.value(row) {
                "sim_registered" => EventKind::Registered {
                    workspace: workspace(ws, row)?,
                },
                "sim_transferred" => EventKind::Transferred {
                    source: workspace(source_ws, row)?,
                    target: workspace(target_ws, row)?,
                },
                "sim_status_changed" => EventKind::StatusChanged {
                    workspace: workspace(ws, row)?,
                    status: SimStatus::parse(statuses.value(row))
                        .ok_or(format!("row {row}: unknown status"))?,
                },
                "sim_attached" => EventKind::Attached {
                    device: device(row)?,
                },
                "sim_detached" => EventKind::Detached {
                    device: device(row)?,
                },
                other => return Err(format!("row {row}: unknown event type {other}")),
            };
            Ok(SequencedEvent {
                seq: seqs.value(row),
                event: LifecycleEvent {
                    event_id: ids.value(row).to_owned(),
                    at: UtcMillis::from_millis(times.value(row).div_euclid(1000)),
                    iccid: Iccid::parse(iccids.value(row)).map_err(|e| e.to_string())?,
                    kind,
                    actor: None,
                },
            })
        })
        .collect()
}
