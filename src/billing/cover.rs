//! What the allowances of a Workspace's month cover: the included data volume of each SIM's
//! allowance (or of the Workspace's pool of them) is used up by the SIM's data usage in time
//! order; the covered part of each slice's cost is credited, the rest is overage and stays
//! billed as usage.
//!
//! A slice only partly covered is credited `cost x covered MB / slice MB`, rounded half-even
//! to the lake's 10 decimals; its overage is the rest of its cost, so credit + overage is the
//! slice's cost exactly.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

/// Digits of the lake's amounts (`DECIMAL(38, 10)`).
const COST_DIGITS: u32 = 10;
/// Digits of the lake's volumes (`DECIMAL(38, 6)`).
const VOLUME_DIGITS: u32 = 6;
/// The key of the Workspace's pool.
pub const POOL: &str = "pool";

/// A data slice an allowance may cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataSlice {
    pub iccid: String,
    /// Microseconds since the epoch.
    pub start: i64,
    pub record_id: i64,
    pub slice: i16,
    pub volume_mb: Decimal,
    pub currency: String,
    pub cost: Decimal,
}

/// What one allowance (a SIM's, or the pool) covered in one currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Covered {
    pub included_mb: Decimal,
    pub covered_mb: Decimal,
    /// The cost of the covered usage (positive; credited on the invoice as its negative).
    pub cost: Decimal,
}

/// Included MB of a SIM's allowance for a month, prorated to the part of the month from its
/// activation when the price list says so.
pub fn included_mb(
    volume_mb: Decimal,
    prorated: bool,
    (month_start, month_end): (i64, i64),
    activated_at: i64,
) -> Decimal {
    let from = activated_at.max(month_start);
    if !prorated || from <= month_start || month_end <= month_start {
        return volume_mb;
    }
    // Multiplied before divided, so whole shares stay whole.
    let left = Decimal::from(month_end - from.min(month_end));
    (volume_mb * left / Decimal::from(month_end - month_start))
        .round_dp_with_strategy(VOLUME_DIGITS, RoundingStrategy::ToZero)
}

/// Covers `slices` (any order) with the allowances: per SIM, or pooled over the Workspace's
/// SIMs with an allowance. Slices of SIMs without an allowance are not covered. Returns, per
/// allowance (ICCID, or [`POOL`]) and currency, what it covered; an allowance that covered
/// nothing has no entry.
pub fn cover(
    allowances: &BTreeMap<String, Decimal>,
    pooled: bool,
    slices: &[DataSlice],
) -> BTreeMap<(String, String), Covered> {
    let mut left: BTreeMap<&str, (Decimal, Decimal)> = if pooled {
        let pool = allowances.values().copied().sum();
        BTreeMap::from([(POOL, (pool, pool))])
    } else {
        (allowances.iter())
            .map(|(iccid, mb)| (iccid.as_str(), (*mb, *mb)))
            .collect()
    };
    let mut ordered: Vec<&DataSlice> = slices
        .iter()
        .filter(|s| allowances.contains_key(&s.iccid))
        .collect();
    ordered.sort_by_key(|s| (s.start, s.record_id, s.slice));
    let mut out: BTreeMap<(String, String), Covered> = BTreeMap::new();
    for slice in ordered {
        let key = if pooled { POOL } else { slice.iccid.as_str() };
        let Some((included, remaining)) = left.get_mut(key) else {
            continue;
        };
        if remaining.is_zero() || slice.volume_mb <= Decimal::ZERO {
            continue;
        }
        let mb = slice.volume_mb.min(*remaining);
        *remaining -= mb;
        let cost = if mb == slice.volume_mb {
            slice.cost
        } else {
            (slice.cost * mb / slice.volume_mb)
                .round_dp_with_strategy(COST_DIGITS, RoundingStrategy::MidpointNearestEven)
        };
        let entry = (out.entry((key.to_owned(), slice.currency.clone()))).or_default();
        entry.included_mb = *included;
        entry.covered_mb += mb;
        entry.cost += cost;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    fn slice(iccid: &str, start: i64, mb: &str, cost: &str) -> DataSlice {
        DataSlice {
            iccid: iccid.into(),
            start,
            record_id: start,
            slice: 0,
            volume_mb: d(mb),
            currency: "EUR".into(),
            cost: d(cost),
        }
    }

    #[test]
    fn a_sims_allowance_covers_its_usage_in_time_order_and_splits_the_slice_it_runs_out_in() {
        let allowances = BTreeMap::from([("A".to_owned(), d("500"))]);
        let slices = [
            slice("A", 3, "300", "3.0000000000"),
            slice("A", 1, "300", "3.0000000000"),
            slice("B", 2, "100", "1.0000000000"),
        ];
        let covered = cover(&allowances, false, &slices);
        let a = &covered[&("A".to_owned(), "EUR".to_owned())];
        assert_eq!(
            (a.included_mb, a.covered_mb, a.cost),
            (d("500"), d("500"), d("5"))
        );
        assert_eq!(covered.len(), 1, "B has no allowance: {covered:?}");
    }

    #[test]
    fn a_pool_covers_every_sim_with_an_allowance_in_time_order() {
        let allowances = BTreeMap::from([("A".to_owned(), d("100")), ("B".to_owned(), d("100"))]);
        let slices = [
            slice("A", 1, "150", "1.5000000000"),
            slice("B", 2, "100", "1.0000000000"),
            slice("C", 0, "100", "1.0000000000"),
        ];
        let covered = cover(&allowances, true, &slices);
        let pool = &covered[&(POOL.to_owned(), "EUR".to_owned())];
        assert_eq!(
            (pool.included_mb, pool.covered_mb, pool.cost),
            (d("200"), d("200"), d("2"))
        );
    }

    #[test]
    fn an_unused_allowance_has_no_entry() {
        let allowances = BTreeMap::from([("A".to_owned(), d("500"))]);
        assert!(cover(&allowances, false, &[]).is_empty());
    }

    #[test]
    fn a_partly_covered_slice_is_credited_its_share_rounded_half_even() {
        let allowances = BTreeMap::from([("A".to_owned(), d("1"))]);
        let covered = cover(&allowances, false, &[slice("A", 1, "3", "1.0000000000")]);
        let a = &covered[&("A".to_owned(), "EUR".to_owned())];
        assert_eq!(a.cost, d("0.3333333333"));
    }

    proptest::proptest! {
        /// Whatever the usage: an allowance covers all of it up to its included volume and
        /// never more; credits stay within the covered slices' cost; a pool covers at least
        /// what the same allowances cover one SIM at a time.
        #[test]
        fn allowances_cover_up_to_what_they_include(
            included in proptest::collection::vec(proptest::option::of(0u32..300), 3),
            usage in proptest::collection::vec((0usize..3, 0i64..1000, 0u32..200, 0i64..100_000), 0..40),
        ) {
            let allowances: BTreeMap<String, Decimal> = (included.iter().enumerate())
                .filter_map(|(sim, mb)| mb.map(|mb| (sim.to_string(), Decimal::from(mb))))
                .collect();
            let slices: Vec<DataSlice> = (usage.iter().enumerate())
                .map(|(id, (sim, start, mb, units))| DataSlice {
                    iccid: sim.to_string(),
                    start: *start,
                    record_id: id as i64,
                    slice: 0,
                    volume_mb: Decimal::from(*mb),
                    currency: "EUR".into(),
                    cost: Decimal::new(*units, 4),
                })
                .collect();
            let used = |sims: &dyn Fn(&str) -> bool| -> (Decimal, Decimal) {
                (slices.iter().filter(|s| sims(&s.iccid)))
                    .fold((Decimal::ZERO, Decimal::ZERO), |(mb, cost), s| (mb + s.volume_mb, cost + s.cost))
            };
            let single = cover(&allowances, false, &slices);
            for (sim, mb) in &allowances {
                let (data, cost) = used(&|i| i == sim);
                let got = single.get(&(sim.clone(), "EUR".to_owned())).cloned().unwrap_or_default();
                proptest::prop_assert_eq!(got.covered_mb, data.min(*mb));
                proptest::prop_assert!(got.cost >= Decimal::ZERO && got.cost <= cost);
            }
            let pooled = cover(&allowances, true, &slices);
            let pool: Decimal = allowances.values().copied().sum();
            let (data, cost) = used(&|i| allowances.contains_key(i));
            let got = pooled.get(&(POOL.to_owned(), "EUR".to_owned())).cloned().unwrap_or_default();
            proptest::prop_assert_eq!(got.covered_mb, data.min(pool));
            proptest::prop_assert!(got.cost >= Decimal::ZERO && got.cost <= cost);
            let per_sim: Decimal = single.values().map(|c| c.covered_mb).sum();
            proptest::prop_assert!(got.covered_mb >= per_sim);
        }
    }

    #[test]
    fn prorating_takes_the_share_of_the_month_from_activation() {
        let month = (0, 30 * 86_400_000_000);
        assert_eq!(
            included_mb(d("300"), true, month, 20 * 86_400_000_000),
            d("100")
        );
        assert_eq!(
            included_mb(d("300"), false, month, 20 * 86_400_000_000),
            d("300")
        );
        assert_eq!(included_mb(d("300"), true, month, -5), d("300"));
    }
}
