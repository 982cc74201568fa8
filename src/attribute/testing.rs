//! Test data shared by the attribution tests: one SIM, its owners over time, a record.

use proptest::prelude::*;

use super::SequencedEvent;
use crate::domain::{
    Currency, EventKind, Iccid, LifecycleEvent, Money, RecordId, TrafficType, UsageRecord,
    UtcMillis, Volume, Volumes, WorkspaceId,
};

pub fn ws(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

pub fn iccid() -> Iccid {
    Iccid::parse("8988303000010000216").unwrap()
}

/// The SIM's events for `tenures` ((instant, owner) in time order): a registration to the
/// first owner, then a transfer to each next one.
pub fn tenure_events(tenures: &[(i64, i64)]) -> Vec<SequencedEvent> {
    let mut previous = None;
    tenures
        .iter()
        .enumerate()
        .map(|(i, &(at, owner))| {
            let kind = match previous {
                None => EventKind::Registered {
                    workspace: ws(owner),
                },
                Some(source) => EventKind::Transferred {
                    source: ws(source),
                    target: ws(owner),
                },
            };
            previous = Some(owner);
            SequencedEvent {
                seq: i as i64,
                event: LifecycleEvent {
                    event_id: format!("e{i}"),
                    at: UtcMillis::from_millis(at),
                    iccid: iccid(),
                    kind,
                    actor: None,
                },
            }
        })
        .collect()
}

/// A usage record of the SIM over [start, end) ms with amounts in units.
pub fn record(start: i64, end: i64, rx: i128, tx: i128, cost: i128) -> UsageRecord {
    UsageRecord {
        id: RecordId(1),
        traffic_type: TrafficType::Data,
        start: UtcMillis::from_millis(start),
        end: UtcMillis::from_millis(end),
        iccid: iccid(),
        imsi: None,
        operator: None,
        volume: Volumes::new(Volume::from_units(rx), Volume::from_units(tx)).unwrap(),
        cost: Money::from_units(cost),
        currency: Currency::parse("EUR").unwrap(),
    }
}

/// `min_len` to 5 tenures at distinct instants in [0, 10 000) ms, among Workspaces 101-103,
/// each owner different from the one before.
pub fn arbitrary_tenures(min_len: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::btree_set(0i64..10_000, min_len..6)
        .prop_flat_map(|instants| {
            let n = instants.len();
            (Just(instants), prop::collection::vec(101i64..104, n))
        })
        .prop_map(|(instants, owners)| {
            let mut out: Vec<(i64, i64)> = Vec::new();
            for (at, w) in instants.into_iter().zip(owners) {
                if out.last().is_none_or(|&(_, prev)| prev != w) {
                    out.push((at, w));
                }
            }
            out
        })
}
