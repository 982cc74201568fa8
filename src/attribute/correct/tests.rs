use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::attribute::testing::{arbitrary_tenures, record, tenure_events, ws};
use crate::attribute::{QuarantineReason, SequencedEvent};

fn book_of(events: &[SequencedEvent]) -> OwnershipBook {
    OwnershipBook::build(events).0
}

fn stored(slice: &Slice, reverses: Option<i16>, original: bool) -> StoredSlice {
    StoredSlice {
        slice: slice.index,
        destination: slice.destination,
        start: slice.start,
        end: slice.end,
        rx: slice.rx,
        tx: slice.tx,
        cost: slice.cost,
        reverses,
        original,
    }
}

/// The record as first written, with the events known then.
fn written(record: &UsageRecord, book: &OwnershipBook) -> StoredRecord {
    StoredRecord {
        record: record.clone(),
        source: "usage.ndjson:1".into(),
        slices: attribute(record, book)
            .iter()
            .map(|s| stored(s, None, true))
            .collect(),
    }
}

fn apply(record: &mut StoredRecord, correction: &Correction) {
    apply_where(record, correction, |_| true);
}

/// Stores only the rows of `correction` bound for the tables `stored_in` accepts, as a pass
/// stopped between its commits leaves them.
fn apply_where(
    record: &mut StoredRecord,
    correction: &Correction,
    stored_in: impl Fn(Destination) -> bool,
) {
    for (reversal, cancels) in &correction.reversals {
        if stored_in(reversal.destination) {
            record.slices.push(stored(reversal, Some(*cancels), false));
        }
    }
    record.slices.extend(
        (correction.slices.iter())
            .filter(|s| stored_in(s.destination))
            .map(|s| stored(s, None, false)),
    );
}

fn in_quarantine(destination: Destination) -> bool {
    matches!(destination, Destination::Quarantine(_))
}

/// What finance sums: amounts per destination over every row, reversals included.
fn sums(
    slices: impl IntoIterator<Item = (Destination, i128, i128, i128)>,
) -> BTreeMap<String, (i128, i128, i128)> {
    let mut out: BTreeMap<String, (i128, i128, i128)> = BTreeMap::new();
    for (destination, rx, tx, cost) in slices {
        let entry = out.entry(format!("{destination:?}")).or_default();
        entry.0 += rx;
        entry.1 += tx;
        entry.2 += cost;
    }
    out.retain(|_, v| *v != (0, 0, 0));
    out
}

fn stored_sums(record: &StoredRecord) -> BTreeMap<String, (i128, i128, i128)> {
    sums(
        record
            .slices
            .iter()
            .map(|s| (s.destination, s.rx.units(), s.tx.units(), s.cost.units())),
    )
}

fn batch_sums(record: &UsageRecord, book: &OwnershipBook) -> BTreeMap<String, (i128, i128, i128)> {
    sums(
        attribute(record, book)
            .iter()
            .map(|s| (s.destination, s.rx.units(), s.tx.units(), s.cost.units())),
    )
}

#[test]
fn a_late_transfer_reverses_the_old_slice_and_adds_both_sides() {
    let all = tenure_events(&[(0, 101), (1000, 102)]);
    let mut row = written(&record(500, 1500, 10, 0, 100), &book_of(&all[..1]));
    let correction = correct(&row, &book_of(&all))
        .unwrap()
        .expect("a correction");
    assert_eq!(correction.reversals.len(), 1);
    assert_eq!(correction.reversals[0].1, 0);
    assert_eq!(correction.reversals[0].0.cost, Money::from_units(-100));
    let numbers: Vec<i16> = correction.slices.iter().map(|s| s.index).collect();
    assert_eq!(numbers, vec![2, 3]);
    apply(&mut row, &correction);
    assert_eq!(stored_sums(&row), batch_sums(&row.record, &book_of(&all)));
    assert_eq!(correct(&row, &book_of(&all)).unwrap(), None);
}

#[test]
fn a_late_registration_releases_the_quarantined_record() {
    let all = tenure_events(&[(0, 101)]);
    let mut row = written(&record(500, 1500, 10, 5, 100), &OwnershipBook::default());
    assert_eq!(
        row.slices[0].destination,
        Destination::Quarantine(QuarantineReason::UnknownSim)
    );
    let correction = correct(&row, &book_of(&all))
        .unwrap()
        .expect("a correction");
    apply(&mut row, &correction);
    let expected = BTreeMap::from([(
        format!("{:?}", Destination::Workspace(ws(101))),
        (10, 5, 100),
    )]);
    assert_eq!(stored_sums(&row), expected);
}

#[test]
fn a_release_stopped_before_its_usage_commit_is_completed() {
    let all = tenure_events(&[(0, 101)]);
    let mut row = written(&record(500, 1500, 10, 5, 100), &OwnershipBook::default());
    let book = book_of(&all);
    let correction = correct(&row, &book).unwrap().expect("a correction");
    apply_where(&mut row, &correction, in_quarantine);
    // Only the reversal of the quarantined slice is stored: nothing counts.
    assert_eq!(stored_sums(&row), BTreeMap::new());
    let completion = correct(&row, &book).unwrap().expect("the missing slice");
    assert!(completion.reversals.is_empty());
    assert_eq!(completion.slices.len(), 1);
    apply(&mut row, &completion);
    assert_eq!(stored_sums(&row), batch_sums(&row.record, &book));
    assert_eq!(correct(&row, &book).unwrap(), None);
}

#[test]
fn rows_that_reverse_everything_are_refused_as_corrupt() {
    let row = StoredRecord {
        record: record(0, 10, 1, 1, 1),
        source: "usage.ndjson:1".into(),
        slices: vec![StoredSlice {
            slice: 1,
            destination: Destination::Workspace(ws(101)),
            start: UtcMillis::from_millis(0),
            end: UtcMillis::from_millis(10),
            rx: Volume::from_units(-1),
            tx: Volume::from_units(-1),
            cost: Money::from_units(-1),
            reverses: Some(1),
            original: false,
        }],
    };
    assert!(correct(&row, &OwnershipBook::default()).is_err());
}

proptest! {
    /// Events arrive in up to three rounds, each after usage was written with the events
    /// known then: after each round's corrections (stored whole, or only one table's rows
    /// and then completed), every sum per destination equals the attribution with the
    /// events known so far, and correcting again changes nothing.
    #[test]
    fn corrections_after_each_late_round_give_the_batch_sums(
        tenures in arbitrary_tenures(1),
        rounds in prop::collection::vec(0usize..3, 6),
        stopped in prop::collection::vec(0u8..3, 3),
        start in 0i64..10_000, len in 0i64..5_000,
        rx in 0i128..10_000_000_000, tx in 0i128..10_000_000_000, cost in 0i128..100_000_000_000,
    ) {
        let all = tenure_events(&tenures);
        let known_by = |round: usize| -> Vec<SequencedEvent> {
            all.iter().enumerate().filter(|(i, _)| rounds[*i] <= round).map(|(_, e)| e.clone()).collect()
        };
        let usage = record(start, start + len, rx, tx, cost);
        let mut row = written(&usage, &OwnershipBook::default());
        for (round, stopped) in stopped.iter().enumerate() {
            let book = book_of(&known_by(round));
            if let Some(correction) = correct(&row, &book).unwrap() {
                match stopped {
                    // Only the `quarantine` rows stored (stopped before `usage`), only the
                    // others, or all.
                    1 => apply_where(&mut row, &correction, in_quarantine),
                    2 => apply_where(&mut row, &correction, |d| !in_quarantine(d)),
                    _ => apply(&mut row, &correction),
                }
                if let Some(completion) = correct(&row, &book).unwrap() {
                    apply(&mut row, &completion);
                }
            }
            prop_assert_eq!(stored_sums(&row), batch_sums(&usage, &book));
            prop_assert_eq!(correct(&row, &book).unwrap(), None);
            let numbers: std::collections::HashSet<i16> = row.slices.iter().map(|s| s.slice).collect();
            prop_assert_eq!(numbers.len(), row.slices.len(), "slice numbers are unique per record");
        }
    }
}
