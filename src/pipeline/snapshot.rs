//! Snapshots of the SIM events per partition of the events topic, so that a follower that
//! is assigned partitions rebuilds their ownership from a snapshot plus the events stored
//! after it, not from every event ever stored.
//!
//! A snapshot of partition `p` through `S` holds every stored event read from `p` whose
//! `seq` is at most `S` (the largest `seq` among them; for a partition without events, the
//! largest `seq` its writer knew, and no rows). That stays true whoever writes to `p` later:
//! `p` has one writer at a time (a pass's commits are fenced on its partitions' positions),
//! and a writer numbers its new events on from the largest `seq` it loaded or the largest
//! `S` of the snapshots it loaded from, which is at least `p`'s. So `p`'s events are its
//! snapshot plus its stored events
//! with `seq > S`; events that did not come from the topic (a file ingest into the same
//! lake) are always read from `sim_events`. The snapshot's `S` is recorded as a Delta `txn`
//! (`simtally:snapshot:TOPIC:PARTITION`) in the commit that writes it, and that commit
//! replaces the partition's previous snapshot files.

use arrow::array::RecordBatch;
use deltalake::kernel::Transaction;
use std::collections::{HashMap, HashSet};

use super::stored::StoredSimEvents;
use crate::attribute::SequencedEvent;
use crate::lake::{Lake, LakeError, LakeTable, PartitionValue};
use crate::tables::{self, sim_events, sim_events_snapshot};

/// The `txn` application id under which a partition's snapshot records its `through_seq`.
fn snapshot_app_id(topic: &str, partition: i32) -> String {
    format!("simtally:snapshot:{topic}:{partition}")
}

/// The `through_seq` of each of `partitions` that has a snapshot.
async fn recorded_through(
    lake: &Lake,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, LakeError> {
    let app_ids: Vec<String> = partitions
        .iter()
        .map(|p| snapshot_app_id(topic, *p))
        .collect();
    let recorded = lake
        .resume_points(LakeTable::SimEventsSnapshot, &app_ids)
        .await?;
    Ok(partitions
        .iter()
        .zip(&app_ids)
        .filter_map(|(p, id)| Some((*p, *recorded.get(id)?)))
        .collect())
}

/// The stored SIM events of `partitions` of the events topic `topic`, and every stored
/// event not read from that topic.
pub(super) async fn load(
    lake: &Lake,
    topic: &str,
    partitions: &[i32],
) -> Result<StoredSimEvents, LakeError> {
    let through = recorded_through(lake, topic, partitions).await?;
    let mut gathered = Gathered::default();
    if !through.is_empty() {
        let wanted: Vec<String> = through
            .iter()
            .map(|(p, s)| format!("(kafka_partition = {p} AND through_seq = {s})"))
            .collect();
        let sql = format!(
            "SELECT {} FROM t WHERE {}",
            sim_events_snapshot::columns(),
            wanted.join(" OR ")
        );
        let batches = lake.select(LakeTable::SimEventsSnapshot, &sql).await?;
        gathered.add_snapshot_rows(&batches)?;
    }
    let loaded_from_snapshots = gathered.events.len();
    // Only the partitions' later events, and every event not read from the topic.
    let floor = partitions
        .iter()
        .map(|p| through.get(p).copied().unwrap_or(-1))
        .min()
        .unwrap_or(-1);
    let (low, high) = topic_source_range(topic);
    let sql = format!(
        "SELECT {}, source FROM t \
         WHERE seq > {floor} OR source < '{low}' OR source >= '{high}'",
        sim_events::COLUMNS
    );
    let batches = lake.select(LakeTable::SimEvents, &sql).await?;
    let wanted = |partition: Option<i32>, seq: i64| match partition {
        None => true,
        Some(p) => partitions.contains(&p) && seq > through.get(&p).copied().unwrap_or(-1),
    };
    gathered.add_stored_rows(&batches, topic, wanted)?;
    tracing::info!(
        from_snapshots = loaded_from_snapshots,
        after_snapshots = gathered.events.len() - loaded_from_snapshots,
        partitions_without_snapshot = partitions.len() - through.len(),
        "SIM events loaded for the assigned partitions"
    );
    let floor = through.values().copied().max().unwrap_or(-1);
    Ok(StoredSimEvents::new(gathered.events, gathered.partitions).numbered_after(floor))
}

/// `source` values of messages of `topic` lie in `[low, high)` (`topic/` .. `topic0`, as
/// `0` follows `/`): a range that the files' statistics can prune by.
fn topic_source_range(topic: &str) -> (String, String) {
    let quoted = topic.replace('\'', "''");
    (format!("{quoted}/"), format!("{quoted}0"))
}

/// The partition a message of `topic` came from, by its `source` (`topic/partition/offset`).
fn partition_of(source: &str, topic: &str) -> Option<i32> {
    let rest = source.strip_prefix(topic)?.strip_prefix('/')?;
    rest.split('/').next()?.parse().ok()
}

#[derive(Default)]
struct Gathered {
    events: Vec<SequencedEvent>,
    partitions: Vec<Option<i32>>,
    ids: HashSet<String>,
}

impl Gathered {
    /// Adds an event unless one with its id was added (two snapshot writers may race).
    fn push(&mut self, event: SequencedEvent, partition: Option<i32>) {
        if self.ids.insert(event.event.event_id.clone()) {
            self.events.push(event);
            self.partitions.push(partition);
        }
    }

    fn add_snapshot_rows(&mut self, batches: &[RecordBatch]) -> Result<(), LakeError> {
        for batch in batches {
            let events = sim_events_snapshot::read(batch)
                .map_err(|detail| corrupt(LakeTable::SimEventsSnapshot, detail))?;
            for (event, partition) in events {
                self.push(event, partition);
            }
        }
        Ok(())
    }

    fn add_stored_rows(
        &mut self,
        batches: &[RecordBatch],
        topic: &str,
        wanted: impl Fn(Option<i32>, i64) -> bool,
    ) -> Result<(), LakeError> {
        for batch in batches {
            let corrupt = |detail| corrupt(LakeTable::SimEvents, detail);
            let events = sim_events::read(std::slice::from_ref(batch)).map_err(corrupt)?;
            let sources = tables::text(batch, "source").map_err(corrupt)?;
            for (row, event) in events.into_iter().enumerate() {
                let partition = partition_of(sources.value(row), topic);
                if wanted(partition, event.seq) {
                    self.push(event, partition);
                }
            }
        }
        Ok(())
    }
}

fn corrupt(table: LakeTable, detail: String) -> LakeError {
    LakeError::Corrupt {
        table: table.name(),
        detail,
    }
}

/// Writes a snapshot of each of `partitions` from `stored` (events a committed pass left),
/// replacing their previous snapshots. Returns the table version, if anything was written.
pub(super) async fn write(
    lake: &Lake,
    topic: &str,
    stored: &StoredSimEvents,
    partitions: &[i32],
) -> Result<Option<i64>, LakeError> {
    let mut appender = lake.appender(LakeTable::SimEventsSnapshot).await?;
    let recorded = recorded_through(lake, topic, partitions).await?;
    let mut txns = Vec::new();
    let mut written = Vec::new();
    for partition in partitions {
        let events: Vec<&SequencedEvent> = stored.of_partition(*partition).collect();
        // A partition without events gets an empty snapshot (a `txn` and no file) through
        // the largest `seq` known, so that loading it does not read every stored event.
        let through = events
            .iter()
            .map(|e| e.seq)
            .max()
            .unwrap_or_else(|| stored.numbered_through());
        // A snapshot is all of the partition's events up to its `through_seq`: one through
        // the same `seq` holds the same events already.
        if through < 0 || recorded.get(partition) == Some(&through) {
            continue;
        }
        if !events.is_empty() {
            let batch = sim_events_snapshot::rows(&events, through, *partition)
                .map_err(|e| corrupt(LakeTable::SimEventsSnapshot, e.to_string()))?;
            appender
                .write_partition(
                    &[batch],
                    &[("kafka_partition", PartitionValue::Long((*partition).into()))],
                )
                .await?;
        }
        txns.push(Transaction::new(
            snapshot_app_id(topic, *partition),
            through,
        ));
        written.push(i64::from(*partition));
    }
    if written.is_empty() {
        return Ok(None);
    }
    appender.replace_partitions("kafka_partition", &written)?;
    appender.commit(txns).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_of_a_message_is_read_from_its_source() {
        assert_eq!(partition_of("sim-events/3/1200", "sim-events"), Some(3));
        assert_eq!(partition_of("sim-events/12/0", "sim-events"), Some(12));
        assert_eq!(partition_of("sim-events-2/3/1200", "sim-events"), None);
        assert_eq!(partition_of("events.ndjson:4", "sim-events"), None);
    }

    #[test]
    fn the_topic_source_range_holds_exactly_the_topics_messages() {
        let (low, high) = topic_source_range("sim-events");
        let inside = |s: &str| s >= low.as_str() && s < high.as_str();
        assert!(inside("sim-events/0/0"));
        assert!(inside("sim-events/99/123456"));
        assert!(!inside("sim-events-2/0/0"));
        assert!(!inside("sim-events0/0/0"));
        assert!(!inside("events.ndjson:1"));
        assert!(!inside("sim-events.ndjson:1"));
    }
}
