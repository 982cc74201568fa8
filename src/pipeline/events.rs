use std::collections::{BTreeMap, HashSet};

use super::corrections::TouchedSims;
use super::intake::{Decoded, EventsRead, Intake};
use super::stored::{StoredFrom, StoredSimEvents};
use super::{EventCounts, IngestError};
use crate::attribute::OwnershipBook;
use crate::decode::{decode_any_event, InputLimits};
use crate::directory::{load_directory, LinkLimits};
use crate::domain::Rejection;
use crate::domain::UtcMillis;
use crate::lake::{Claim, Lake, TableAppender};
use crate::source::{Chunk, ChunkSource, SourceError};
use crate::tables::dead_letters::DeadLetter;
use crate::tables::sim_events;

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
            let events = sim_events::load(lake).await?;
            let partitions = vec![None; events.len()];
            StoredSimEvents::new(events, partitions)
        }
    })
}

/// The SIM events stored before this pass: those kept from the last pass while no other
/// writer stored events of its partitions since, else loaded from the lake. `true` with
/// them when kept ones had to be loaded again.
async fn stored_events(
    lake: &Lake,
    appender: &TableAppender,
    stored: StoredFrom,
) -> Result<(StoredSimEvents, bool), IngestError> {
    Ok(match stored {
        StoredFrom::Kept(stored, _, _) if stored.version == appender.read_version() => {
            (stored, false)
        }
        StoredFrom::Kept(stored, _, Some(claim))
            if still_current(appender, &stored, &claim).await? =>
        {
            (stored.at_version(appender.read_version()), false)
        }
        StoredFrom::Kept(_, otherwise, _) => {
            tracing::info!("another writer stored SIM events since the last pass: loading them");
            (load_stored(lake, *otherwise).await?, true)
        }
        other => (load_stored(lake, other).await?, false),
    })
}

/// One events pass: the stored events and the directory, the source read to its end and
/// decoded, each line taken in ([`Intake`]), the directory applied, the ownership book
/// built, and the accepted rows written (not committed).
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
    let (stored, reloaded) = stored_events(lake, &appender, stored).await?;
    let mut directory = load_directory(lake, link_limits).await?;
    let input_limits = input_limits.clone();
    let (read, chunks, decoded) = tokio::task::spawn_blocking(move || {
        let (read, chunks) = read_all(source)?;
        let decoded = decode_lines(&chunks, &input_limits)?;
        Ok::<_, IngestError>((read, chunks, decoded))
    })
    .await
    .map_err(|e| IngestError::Internal(format!("events reader failed: {e}")))??;
    let mut intake = Intake::new(stored);
    intake.take_lines(&read, &chunks, decoded, &mut directory)?;
    let directory_rows = intake.apply_directory(&mut directory, now);
    let mut settled = intake.settle(directory_rows, dead_letters_in_lake, now);
    if !settled.rows.is_empty() {
        appender.write(settled.rows.finish()).await?;
    }
    let (workspace_rows, membership_rows) = settled.directory_rows.finish();
    for (appender, batch) in directory_appenders
        .iter_mut()
        .zip([workspace_rows, membership_rows])
    {
        if batch.num_rows() > 0 {
            appender.write(batch).await?;
        }
    }
    Ok(EventPass {
        book: settled.book,
        stored_after: settled.stored_after,
        touched: settled.touched,
        resume_points: read.resume_points,
        appender,
        directory_appenders,
        dead_letters: settled.dead_letters,
        counts: settled.counts,
        arrivals: settled.latest,
        reloaded,
    })
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
) -> Result<Vec<Decoded>, IngestError> {
    let lines: Vec<(&[u8], Option<u64>)> = chunks
        .iter()
        .flat_map(|(_, chunk)| {
            (chunk.records()).map(|(line, bytes)| (bytes, limits.too_long(chunk, line, bytes)))
        })
        .collect();
    let decode = |(bytes, cut): &(&[u8], Option<u64>)| {
        let blank = bytes.iter().all(u8::is_ascii_whitespace);
        (!blank).then(|| match cut {
            Some(length) => Err(Rejection::line_too_long(
                *length,
                limits.max_line_bytes,
                crate::source::KEPT_BYTES,
            )),
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
