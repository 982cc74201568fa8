//! Corrections: a lifecycle event that arrives after usage it affects was written changes
//! who owned the SIM during that usage. The rows already in the lake are never rewritten;
//! instead a reversal (the same slice with negated amounts) cancels each slice that is no
//! longer right, and the record's slices under the new ownership are added. Summed, the
//! rows then give exactly what attributing the record with all events known would give.

use std::collections::HashSet;

use super::{attribute, Destination, OwnershipBook, Slice};
use crate::domain::{Money, UsageRecord, UtcMillis, Volume, Volumes};

/// A row of `usage` or `quarantine` as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSlice {
    pub slice: i16,
    pub destination: Destination,
    pub start: UtcMillis,
    pub end: UtcMillis,
    pub rx: Volume,
    pub tx: Volume,
    pub cost: Money,
    /// Set on a reversal: the slice it cancels.
    pub reverses: Option<i16>,
    /// Written when the record was first ingested (not by a correction).
    pub original: bool,
}

/// One record's stored rows, in both tables.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// The record's own fields; its times and amounts are recomputed from the rows.
    pub record: UsageRecord,
    /// Where the record was read from; correction rows carry it too.
    pub source: String,
    pub slices: Vec<StoredSlice>,
}

/// The rows that correct one record: reversals (each with the slice it cancels) and the
/// record's new slices, numbered on from the highest slice number the record has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correction {
    pub record: UsageRecord,
    pub reversals: Vec<(Slice, i16)>,
    pub slices: Vec<Slice>,
}

impl Correction {
    pub fn rows(&self) -> usize {
        self.reversals.len() + self.slices.len()
    }
}

/// Why stored rows cannot be corrected (a lake not written by simtally, or damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record_id}: {detail}")]
pub struct CorruptRecord {
    pub record_id: i64,
    pub detail: String,
}

/// The slices that count: neither reversals nor reversed.
fn live_slices(slices: &[StoredSlice]) -> Vec<&StoredSlice> {
    let reversed: HashSet<i16> = slices.iter().filter_map(|s| s.reverses).collect();
    let mut live: Vec<&StoredSlice> = slices
        .iter()
        .filter(|s| s.reverses.is_none() && !reversed.contains(&s.slice))
        .collect();
    live.sort_by_key(|s| (s.start, s.slice));
    live
}

/// The rows that make `stored` agree with `book`, or `None` if it already does: a reversal
/// for each slice that counts and is not wanted, and each wanted slice that does not count
/// yet. Taking the difference, not all or nothing, also completes a correction that was
/// stored only in part (a pass stopped between its `quarantine` and `usage` commits).
pub fn correct(
    stored: &StoredRecord,
    book: &OwnershipBook,
) -> Result<Option<Correction>, CorruptRecord> {
    let record = whole_record(stored, &original_slices(&stored.slices))?;
    let mut missing: Vec<Option<Slice>> = attribute(&record, book).into_iter().map(Some).collect();
    let mut stale = Vec::new();
    for have in live_slices(&stored.slices) {
        let wanted = missing
            .iter()
            .position(|want| want.as_ref().is_some_and(|want| same_slice(have, want)));
        match wanted {
            Some(found) => missing[found] = None,
            None => stale.push(have),
        }
    }
    let missing: Vec<Slice> = missing.into_iter().flatten().collect();
    if stale.is_empty() && missing.is_empty() {
        return Ok(None);
    }
    let mut next = stored.slices.iter().map(|s| s.slice).max().unwrap_or(0);
    if i32::from(next) + (stale.len() + missing.len()) as i32 > i32::from(i16::MAX) {
        return Err(CorruptRecord {
            record_id: stored.record.id.0,
            detail: "its corrections have used every slice number (up to 32,767)".to_owned(),
        });
    }
    let mut number = || {
        next += 1;
        next
    };
    let reversals = stale
        .iter()
        .map(|s| {
            let reversal = Slice {
                index: number(),
                start: s.start,
                end: s.end,
                destination: s.destination,
                rx: Volume::from_units(-s.rx.units()),
                tx: Volume::from_units(-s.tx.units()),
                cost: Money::from_units(-s.cost.units()),
            };
            (reversal, s.slice)
        })
        .collect();
    let slices = missing
        .into_iter()
        .map(|s| Slice {
            index: number(),
            ..s
        })
        .collect();
    Ok(Some(Correction {
        record,
        reversals,
        slices,
    }))
}

/// The slices the record was first written as (whatever corrections stored since, in full
/// or in part).
fn original_slices(slices: &[StoredSlice]) -> Vec<&StoredSlice> {
    let mut original: Vec<&StoredSlice> = slices.iter().filter(|s| s.original).collect();
    original.sort_by_key(|s| (s.start, s.slice));
    original
}

/// The record as it was read: its live slices span its time and sum to its amounts.
fn whole_record(
    stored: &StoredRecord,
    original: &[&StoredSlice],
) -> Result<UsageRecord, CorruptRecord> {
    let corrupt = |detail: &str| CorruptRecord {
        record_id: stored.record.id.0,
        detail: detail.to_owned(),
    };
    let (Some(first), Some(last)) = (original.first(), original.iter().map(|s| s.end).max()) else {
        return Err(corrupt("no row holds the record as first written"));
    };
    let sum = |amount: fn(&StoredSlice) -> i128| original.iter().map(|s| amount(s)).sum::<i128>();
    let volume = Volumes::new(
        Volume::from_units(sum(|s| s.rx.units())),
        Volume::from_units(sum(|s| s.tx.units())),
    )
    .ok_or_else(|| corrupt("its rows sum to a negative volume"))?;
    Ok(UsageRecord {
        start: first.start,
        end: last,
        volume,
        cost: Money::from_units(sum(|s| s.cost.units())),
        ..stored.record.clone()
    })
}

fn same_slice(have: &StoredSlice, want: &Slice) -> bool {
    (
        have.start,
        have.end,
        have.destination,
        have.rx,
        have.tx,
        have.cost,
    ) == (
        want.start,
        want.end,
        want.destination,
        want.rx,
        want.tx,
        want.cost,
    )
}

#[cfg(test)]
mod tests;
