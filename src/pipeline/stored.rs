//! The SIM lifecycle events a pass starts from: those the lake holds, as the last committed
//! pass left them, and where a pass takes them from.

use crate::attribute::SequencedEvent;
use crate::lake::Claim;

/// The SIM lifecycle events the lake holds, as a pass that committed left them. A follower
/// keeps them from one pass to the next while its partitions stay the same, so a pass reads
/// only its new events; on (re)assignment they are loaded from the lake again.
#[derive(Clone, Debug, Default)]
pub struct StoredSimEvents {
    pub(super) events: Vec<SequencedEvent>,
    /// By event: the partition of the events topic it was read from (`None`: a file, or
    /// not known because the events were loaded in full).
    pub(super) partitions: Vec<Option<i32>>,
    /// New events are numbered after this `seq`: the largest of the events' and of the
    /// `through_seq` of the snapshots they were loaded from (an empty partition's snapshot
    /// holds no event, yet its later events must be numbered after it). Never more than
    /// the largest `seq` stored in the lake, so a run that loads every stored event numbers
    /// after it too.
    pub(super) numbered_through: i64,
    /// The `sim_events` version these are the events of, once a pass has committed (or
    /// read) it: kept events are used again only while no other writer has committed since.
    pub(super) version: Option<i64>,
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
