use super::{split_pro_rata, OwnershipBook, Timeline};
use crate::domain::{Money, UsageRecord, UtcMillis, Volume, WorkspaceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuarantineReason {
    /// The SIM is known but had no owner at that time (before its registration).
    NoOwner,
    /// No lifecycle event was ever seen for the SIM.
    UnknownSim,
    /// Ownership changed more often during the record than a record is cut
    /// ([`MAX_SLICES`]): kept whole, its amounts accounted for, for an operator to look at.
    TooManySlices,
}

/// The most slices one record is cut into (1,023 ownership changes inside it). A record
/// that would be cut into more is quarantined whole as `too_many_slices`, so a SIM moved
/// back and forth thousands of times within one record cannot make rows without bound.
pub const MAX_SLICES: usize = 1024;

impl QuarantineReason {
    /// Reads the lake's `reason` column back.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "no_owner" => Some(QuarantineReason::NoOwner),
            "unknown_sim" => Some(QuarantineReason::UnknownSim),
            "too_many_slices" => Some(QuarantineReason::TooManySlices),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineReason::NoOwner => "no_owner",
            QuarantineReason::UnknownSim => "unknown_sim",
            QuarantineReason::TooManySlices => "too_many_slices",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    Workspace(WorkspaceId),
    Quarantine(QuarantineReason),
}

/// The part of a usage record that falls into one ownership interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// 0 for a record that was not cut; 1, 2, ... in time order for one that was.
    pub index: i16,
    pub start: UtcMillis,
    pub end: UtcMillis,
    pub destination: Destination,
    pub rx: Volume,
    pub tx: Volume,
    pub cost: Money,
}

impl Slice {
    pub fn total(&self) -> Volume {
        self.rx + self.tx
    }
}

/// Cuts `record` at every ownership boundary inside [start, end) and gives each slice to the
/// owner of its interval. rx, tx and cost are split pro rata to duration, exactly.
pub fn attribute(record: &UsageRecord, book: &OwnershipBook) -> Vec<Slice> {
    attribute_planned(record, plan(record, book.timeline(&record.iccid)))
}

/// Where a record goes before any slice is built: whole to one destination (most records
/// lie within one tenure), or cut by its SIM's timeline.
#[derive(Clone, Copy, Debug)]
pub enum Plan<'a> {
    Whole(Destination),
    Cut(&'a Timeline),
}

/// The [`Plan`] for `record`, its SIM looked up in the ownership book (`None`: the book
/// does not know it). Cheap and allocation-free, so that a caller can plan many records in
/// a tight loop whose memory accesses overlap.
pub fn plan<'a>(record: &UsageRecord, timeline: Option<&'a Timeline>) -> Plan<'a> {
    let Some(timeline) = timeline else {
        return Plan::Whole(Destination::Quarantine(QuarantineReason::UnknownSim));
    };
    if timeline.starts_within(record.start, record.end).is_empty() {
        return Plan::Whole(destination(timeline.owner_at(record.start)));
    }
    Plan::Cut(timeline)
}

/// A record's slices. Most records are one slice, kept without an allocation.
#[derive(Clone, Debug)]
pub enum Slices {
    One(Slice),
    Cut(Vec<Slice>),
}

impl std::ops::Deref for Slices {
    type Target = [Slice];

    fn deref(&self) -> &[Slice] {
        match self {
            Slices::One(slice) => std::slice::from_ref(slice),
            Slices::Cut(slices) => slices,
        }
    }
}

/// As [`attribute_planned`], without allocating for a record kept whole.
pub fn slices_planned(record: &UsageRecord, plan: Plan<'_>) -> Slices {
    match plan {
        Plan::Whole(destination) => Slices::One(whole(record, destination)),
        Plan::Cut(_) => Slices::Cut(attribute_planned(record, plan)),
    }
}

/// The slices of `record` by its [`plan`].
pub fn attribute_planned(record: &UsageRecord, plan: Plan<'_>) -> Vec<Slice> {
    let timeline = match plan {
        Plan::Whole(destination) => return vec![whole(record, destination)],
        Plan::Cut(timeline) => timeline,
    };
    let pieces = pieces(timeline, record.start, record.end);
    if let [(_, _, owner)] = pieces.as_slice() {
        return vec![whole(record, destination(*owner))];
    }
    if pieces.len() > MAX_SLICES {
        let reason = QuarantineReason::TooManySlices;
        return vec![whole(record, Destination::Quarantine(reason))];
    }
    let durations: Vec<i64> = pieces
        .iter()
        .map(|(s, e, _)| e.millis() - s.millis())
        .collect();
    let rx = split_pro_rata(record.volume.rx().units(), &durations);
    let tx = split_pro_rata(record.volume.tx().units(), &durations);
    let cost = split_pro_rata(record.cost.units(), &durations);
    pieces
        .iter()
        .enumerate()
        .map(|(i, &(start, end, owner))| Slice {
            index: i as i16 + 1,
            start,
            end,
            destination: destination(owner),
            rx: Volume::from_units(rx[i]),
            tx: Volume::from_units(tx[i]),
            cost: Money::from_units(cost[i]),
        })
        .collect()
}

fn whole(record: &UsageRecord, destination: Destination) -> Slice {
    Slice {
        index: 0,
        start: record.start,
        end: record.end,
        destination,
        rx: record.volume.rx(),
        tx: record.volume.tx(),
        cost: record.cost,
    }
}

fn destination(owner: Option<WorkspaceId>) -> Destination {
    owner.map_or(
        Destination::Quarantine(QuarantineReason::NoOwner),
        Destination::Workspace,
    )
}

/// The ownership intervals of [start, end): consecutive, non-empty, each with one owner.
/// A zero-length record is one piece, owned by the owner at its start.
fn pieces(
    timeline: &Timeline,
    start: UtcMillis,
    end: UtcMillis,
) -> Vec<(UtcMillis, UtcMillis, Option<WorkspaceId>)> {
    let mut pieces = vec![(start, end, timeline.owner_at(start))];
    for tenure in timeline.starts_within(start, end) {
        let last = pieces.len() - 1;
        if pieces[last].2 == Some(tenure.workspace) {
            continue;
        }
        pieces[last].1 = tenure.from;
        pieces.push((tenure.from, end, Some(tenure.workspace)));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::testing::{arbitrary_tenures, record, tenure_events, ws};
    use crate::attribute::Tenure;
    use proptest::prelude::*;

    fn book(tenures: &[(i64, i64)]) -> OwnershipBook {
        let mut book = OwnershipBook::default();
        for event in tenure_events(tenures) {
            book.apply(&event.event).unwrap();
        }
        book
    }

    #[test]
    fn a_record_cut_more_than_the_limit_is_quarantined_whole() {
        let moves: Vec<(i64, i64)> = (0..=MAX_SLICES as i64)
            .map(|i| (i, if i % 2 == 0 { 101 } else { 102 }))
            .collect();
        let book = book(&moves);
        let cut = attribute(&record(0, MAX_SLICES as i64, 10, 5, 100), &book);
        assert_eq!(cut.len(), MAX_SLICES);
        let kept = attribute(&record(0, MAX_SLICES as i64 + 1, 10, 5, 100), &book);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].index, 0);
        assert_eq!(
            kept[0].destination,
            Destination::Quarantine(QuarantineReason::TooManySlices)
        );
        assert_eq!(kept[0].cost, Money::from_units(100));
    }

    #[test]
    fn transfer_at_exact_start_goes_to_target_and_at_exact_end_to_source() {
        let b = book(&[(0, 101), (1000, 102)]);
        let starts_at_t = attribute(&record(1000, 2000, 5, 5, 5), &b);
        assert_eq!(starts_at_t.len(), 1);
        assert_eq!(starts_at_t[0].destination, Destination::Workspace(ws(102)));
        let ends_at_t = attribute(&record(500, 1000, 5, 5, 5), &b);
        assert_eq!(ends_at_t.len(), 1);
        assert_eq!(ends_at_t[0].destination, Destination::Workspace(ws(101)));
        let sms_at_t = attribute(&record(1000, 1000, 0, 1_000_000, 9), &b);
        assert_eq!(sms_at_t[0].destination, Destination::Workspace(ws(102)));
    }

    #[test]
    fn chain_a_b_c_inside_one_record_makes_three_slices() {
        let b = book(&[(0, 101), (100, 102), (200, 103)]);
        let slices = attribute(&record(50, 250, 200, 0, 20), &b);
        let owners: Vec<_> = slices.iter().map(|s| s.destination).collect();
        assert_eq!(
            owners,
            vec![
                Destination::Workspace(ws(101)),
                Destination::Workspace(ws(102)),
                Destination::Workspace(ws(103))
            ]
        );
        assert_eq!(
            slices.iter().map(|s| s.rx.units()).collect::<Vec<_>>(),
            vec![50, 100, 50]
        );
        assert_eq!(
            slices.iter().map(|s| s.index).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn before_registration_is_no_owner_and_unknown_sims_are_whole() {
        let b = book(&[(100, 101)]);
        let slices = attribute(&record(0, 200, 10, 10, 10), &b);
        assert_eq!(
            slices[0].destination,
            Destination::Quarantine(QuarantineReason::NoOwner)
        );
        assert_eq!(slices[1].destination, Destination::Workspace(ws(101)));
        let unknown = attribute(&record(0, 200, 10, 10, 10), &OwnershipBook::default());
        assert_eq!(unknown.len(), 1);
        assert_eq!(
            unknown[0].destination,
            Destination::Quarantine(QuarantineReason::UnknownSim)
        );
        assert_eq!(unknown[0].index, 0);
    }

    proptest! {
        #[test]
        fn slices_conserve_amounts_never_overlap_and_follow_boundaries(
            tenures in arbitrary_tenures(0),
            start in 0i64..10_000, len in 0i64..5_000,
            rx in 0i128..10_000_000_000, tx in 0i128..10_000_000_000, cost in 0i128..100_000_000_000,
        ) {
            let b = book(&tenures);
            let r = record(start, start + len, rx, tx, cost);
            let slices = attribute(&r, &b);
            // The ingest's path, without a list for a record kept whole, cuts alike.
            let planned = slices_planned(&r, plan(&r, b.timeline(&r.iccid)));
            prop_assert_eq!(&planned[..], &slices[..]);
            let timeline = Timeline::from_tenures(tenures.iter().map(|&(at, w)| Tenure { from: UtcMillis::from_millis(at), workspace: ws(w) }).collect());

            prop_assert_eq!(slices.iter().map(|s| s.rx).sum::<Volume>(), r.volume.rx());
            prop_assert_eq!(slices.iter().map(|s| s.tx).sum::<Volume>(), r.volume.tx());
            prop_assert_eq!(slices.iter().map(|s| s.cost).sum::<Money>(), r.cost);
            // Slices tile [start, end) in order, without gaps or overlaps.
            prop_assert_eq!(slices.first().unwrap().start, r.start);
            prop_assert_eq!(slices.last().unwrap().end, r.end);
            for pair in slices.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
                prop_assert!(pair[0].start < pair[0].end);
                prop_assert!(pair[0].destination != pair[1].destination);
            }
            // Every slice belongs to the owner at its first instant.
            for s in &slices {
                let expected = if tenures.is_empty() {
                    Destination::Quarantine(QuarantineReason::UnknownSim)
                } else {
                    destination(timeline.owner_at(s.start))
                };
                prop_assert_eq!(s.destination, expected);
                prop_assert_eq!(s.index == 0, slices.len() == 1);
            }
        }
    }
}
