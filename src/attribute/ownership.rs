use ahash::AHashMap;

use crate::domain::{EventKind, Iccid, LifecycleEvent, UtcMillis, WorkspaceId};
use crate::domain::{Reason, Rejection};

/// A lifecycle event with its position in arrival order, which breaks timestamp ties.
#[derive(Clone, Debug)]
pub struct SequencedEvent {
    pub seq: i64,
    pub event: LifecycleEvent,
}

/// From `from` on (until the next tenure starts), `workspace` owns the SIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tenure {
    pub from: UtcMillis,
    pub workspace: WorkspaceId,
}

/// The ownership history of one SIM: tenures in time order. Before the first tenure the
/// SIM has no owner; a transfer ends one tenure and starts the next at the same instant.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    tenures: Vec<Tenure>,
}

impl Timeline {
    pub fn tenures(&self) -> &[Tenure] {
        &self.tenures
    }

    /// The owner at instant `t`: the latest tenure that started at or before `t`.
    pub fn owner_at(&self, t: UtcMillis) -> Option<WorkspaceId> {
        let after = self.tenures.partition_point(|x| x.from <= t);
        after.checked_sub(1).map(|i| self.tenures[i].workspace)
    }

    /// Tenures that start strictly inside (start, end): the cut points of a record.
    pub fn starts_within(&self, start: UtcMillis, end: UtcMillis) -> &[Tenure] {
        let first = self.tenures.partition_point(|x| x.from <= start);
        let last = self.tenures.partition_point(|x| x.from < end);
        &self.tenures[first..last.max(first)]
    }
}

/// Who owned which SIM when, built from lifecycle events applied in (timestamp, seq) order.
#[derive(Clone, Debug, Default)]
pub struct OwnershipBook {
    timelines: AHashMap<Iccid, Timeline>,
}

impl OwnershipBook {
    /// Applies the events in timestamp order (ties: sequence order) and returns the book
    /// with the events it refused, each with the reason.
    pub fn build(events: &[SequencedEvent]) -> (Self, Vec<(SequencedEvent, Rejection)>) {
        let mut in_order: Vec<&SequencedEvent> = events.iter().collect();
        in_order.sort_by_key(|e| (e.event.at, e.seq));
        let mut book = OwnershipBook::default();
        let mut rejected = Vec::new();
        for event in in_order {
            if let Err(rejection) = book.apply(&event.event) {
                rejected.push((event.clone(), rejection));
            }
        }
        (book, rejected)
    }

    /// Applies one event that is not earlier than any applied before it.
    pub fn apply(&mut self, event: &LifecycleEvent) -> Result<(), Rejection> {
        let current = self
            .timelines
            .get(&event.iccid)
            .and_then(|t| t.owner_at(event.at));
        match event.kind {
            EventKind::Registered { workspace } => {
                if let Some(owner) = current {
                    return Err(Rejection::new(
                        Reason::AlreadyRegistered,
                        format!(
                            "SIM {} is already registered to Workspace {owner} at {}",
                            event.iccid, event.at
                        ),
                    ));
                }
                self.push(event.iccid, event.at, workspace);
            }
            EventKind::Transferred { source, target } => {
                let Some(owner) = current else {
                    return Err(Rejection::new(
                        Reason::UnregisteredSim,
                        format!(
                            "SIM {} has no owner at {}: it cannot be transferred",
                            event.iccid, event.at
                        ),
                    ));
                };
                if owner != source {
                    return Err(Rejection::new(
                        Reason::TransferSourceNotOwner,
                        format!(
                            "SIM {} is owned by Workspace {owner} at {}, not by the transfer's source {source}",
                            event.iccid, event.at
                        ),
                    ));
                }
                if source == target {
                    return Err(Rejection::new(
                        Reason::TransferToSameWorkspace,
                        format!(
                            "SIM {} transferred from Workspace {source} to itself",
                            event.iccid
                        ),
                    ));
                }
                self.push(event.iccid, event.at, target);
            }
            EventKind::StatusChanged { .. } => {
                // Status does not move ownership, but it makes the SIM known: its usage
                // before a registration is `no_owner`, not `unknown_sim`.
                self.timelines.entry(event.iccid).or_default();
            }
            EventKind::Attached { .. } | EventKind::Detached { .. } => {
                if current.is_none() {
                    return Err(Rejection::new(
                        Reason::UnregisteredSim,
                        format!(
                            "SIM {} has no owner at {}: it cannot be put into or taken out of a device",
                            event.iccid, event.at
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, iccid: Iccid, from: UtcMillis, workspace: WorkspaceId) {
        let timeline = self.timelines.entry(iccid).or_default();
        // Two ownership events at the same instant: the later one in sequence wins that
        // instant, so the earlier tenure would be empty.
        if timeline.tenures.last().is_some_and(|t| t.from == from) {
            timeline.tenures.pop();
        }
        timeline.tenures.push(Tenure { from, workspace });
    }

    pub fn timeline(&self, iccid: &Iccid) -> Option<&Timeline> {
        self.timelines.get(iccid)
    }

    pub fn sim_count(&self) -> usize {
        self.timelines.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Iccid, &Timeline)> {
        self.timelines.iter()
    }
}

impl Timeline {
    /// A timeline from tenures in time order (tests and generators).
    pub fn from_tenures(tenures: Vec<Tenure>) -> Self {
        Timeline { tenures }
    }
}
