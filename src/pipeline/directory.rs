//! The directory part of an events pass: the pass's directory events applied in the order
//! of their instants, and each new SIM transfer that names a person checked against the
//! directory as it stands at the transfer's instant (the directory events of the same pass
//! up to then included).

use ahash::AHashMap;

use super::arrival::Arrival;
use super::EventCounts;
use crate::attribute::SequencedEvent;
use crate::directory::StoredDirectory;
use crate::domain::Rejection;
use crate::domain::{Actor, DirectoryEvent, EventKind, UtcMillis, WorkspaceId};
use crate::tables::dead_letters::DeadLetter;
use crate::tables::directory::DirectoryRows;

/// A new transfer made by a person or operator, to check before it moves ownership.
struct TransferCheck {
    seq: i64,
    at: UtcMillis,
    actor: Actor,
    source: WorkspaceId,
    target: WorkspaceId,
}

/// What the directory part of a pass decided.
pub(super) struct DirectoryOutcome {
    pub rows: DirectoryRows,
    /// New SIM events (by `seq`) whose actor may not make them.
    pub refused_transfers: Vec<(i64, Rejection)>,
}

/// The new transfers among `events` (those in `arrivals`) that name an actor.
fn transfer_checks(
    events: &[SequencedEvent],
    arrivals: &AHashMap<i64, Arrival>,
) -> Vec<TransferCheck> {
    let mut checks: Vec<TransferCheck> = events
        .iter()
        .filter(|e| arrivals.contains_key(&e.seq))
        .filter_map(|e| match (&e.event.kind, &e.event.actor) {
            (EventKind::Transferred { source, target }, Some(actor)) => Some(TransferCheck {
                seq: e.seq,
                at: e.event.at,
                actor: actor.clone(),
                source: *source,
                target: *target,
            }),
            _ => None,
        })
        .collect();
    checks.sort_by_key(|check| (check.at, check.seq));
    checks
}

/// Applies the new directory events to the directory, earliest first (arrival order among
/// equal timestamps), and numbers the accepted ones on from the stored ones: replaying by
/// that number later gives the directory these checks saw. Transfers that name an actor
/// are checked in between, at their instants.
pub(super) fn apply(
    stored: &mut StoredDirectory,
    mut arrivals: Vec<(DirectoryEvent, Arrival)>,
    events: &[SequencedEvent],
    event_arrivals: &AHashMap<i64, Arrival>,
    now: UtcMillis,
    counts: &mut EventCounts,
    dead_letters: &mut Vec<DeadLetter>,
) -> DirectoryOutcome {
    arrivals.sort_by_key(|(event, _)| event.at);
    let mut checks = transfer_checks(events, event_arrivals)
        .into_iter()
        .peekable();
    let mut refused_transfers = Vec::new();
    let mut check_until = |stored: &StoredDirectory, until: Option<UtcMillis>| {
        while let Some(check) = checks.next_if(|c| until.is_none_or(|until| c.at < until)) {
            if let Err(rejection) =
                (stored.directory).authorize_transfer(&check.actor, check.source, check.target)
            {
                refused_transfers.push((check.seq, rejection));
            }
        }
    };
    let mut rows = DirectoryRows::new(now);
    for (event, arrival) in arrivals {
        check_until(stored, Some(event.at));
        match stored.directory.apply(&event) {
            Ok(()) => {
                rows.append(&event, stored.next_seq, &arrival.source, &stored.directory);
                stored.next_seq += 1;
                counts.accepted += 1;
                counts.directory += 1;
            }
            Err(rejection) => {
                counts.dead_letters += 1;
                dead_letters.push(arrival.into_dead_letter(rejection));
            }
        }
    }
    check_until(stored, None);
    DirectoryOutcome {
        rows,
        refused_transfers,
    }
}
