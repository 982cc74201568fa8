//! Over random data: a month's fees, allowances and the data they include, with a tariff
//! version that takes effect mid-month, equal what the generated model computes by the
//! rules of docs/billing.md, exactly.
//!
//! The model: SIMs registered in October, ACTIVATED before or during November; a tariff
//! version effective from a day in November prices the SIMs activated on or after that day
//! (fee, allowance fee, included MB), the earlier version every other; each allowance covers
//! its SIM's data (or, pooled, the Workspace's) in time order, a record the allowance runs out
//! in credited `cost x covered / volume`, half-even to 10 digits; prorated allowances
//! include the month's share from the activation, truncated to 6 digits.

use crate::common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use simtally::billing::{invoice, InvoiceOptions};

use common::wire::{registered, status};

const WORKSPACE: i64 = 101;
const MONTH_SECONDS: i64 = 30 * 86_400;

fn november() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(seconds_into_november: i64) -> String {
    (november() + Duration::seconds(seconds_into_november))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iccid(sim: usize) -> String {
    format!("89883030000100{sim:05}")
}

/// A data record: its volume in MB (6 digits) and cost (10 digits) as they are written.
fn data_record(id: u64, iccid: &str, start: &str, end: &str, mb: Decimal, cost: Decimal) -> String {
    format!(
        r#"{{"id": {id}, "traffic_type": {{"id": 5, "description": "Data"}}, "start_timestamp": "{start}", "end_timestamp": "{end}", "sim": {{"iccid": "{iccid}"}}, "operator": {{"name": "Vodafone", "mnc": "01", "country": {{"mcc": "262", "name": "Germany"}}}}, "volume": {{"rx": {mb}, "tx": 0, "total": {mb}}}, "cost": {cost}, "currency": {{"code": "EUR"}}}}"#
    )
}

/// (SIM, start seconds into November, MB in millionths, cost in 10^-10).
type DataRecord = (usize, i64, i64, i64);

/// Fee, allowance fee and included MB of a tariff version, in cents and MB.
type Version = (i64, i64, i64);

struct Model {
    /// Per SIM: activated this many seconds into November (negative: in October).
    activations: Vec<i64>,
    records: Vec<DataRecord>,
    v1: Version,
    v2: Version,
    /// The day of November from which v2 is in effect.
    v2_day: u32,
    pooled: bool,
    prorated: bool,
}

/// What the model bills: fees, allowance fees, covered cost, and usage.
fn expected(m: &Model) -> (Decimal, Decimal, Decimal, Decimal) {
    let cents = |c: i64| Decimal::new(c, 2);
    let version = |activated: i64| {
        let day = (activated.max(0) / 86_400) as u32 + 1;
        if day >= m.v2_day {
            m.v2
        } else {
            m.v1
        }
    };
    let fees: Decimal = m.activations.iter().map(|a| cents(version(*a).0)).sum();
    let allowance_fees: Decimal = m.activations.iter().map(|a| cents(version(*a).1)).sum();
    // A SIM whose allowance fee is zero has no allowance (a price of zero bills nothing).
    let has_allowance = |sim: usize| version(m.activations[sim]).1 != 0;
    let included: Vec<Decimal> = (m.activations.iter())
        .map(|a| {
            let mb = match version(*a).1 {
                0 => Decimal::ZERO,
                _ => Decimal::from(version(*a).2),
            };
            match m.prorated && *a > 0 {
                true => (mb * Decimal::from(MONTH_SECONDS - a) / Decimal::from(MONTH_SECONDS))
                    .round_dp_with_strategy(6, RoundingStrategy::ToZero),
                false => mb,
            }
        })
        .collect();
    let mut left: BTreeMap<usize, Decimal> = match m.pooled {
        true => BTreeMap::from([(usize::MAX, included.iter().copied().sum())]),
        false => included.iter().copied().enumerate().collect(),
    };
    let mut order: Vec<(usize, &DataRecord)> = m.records.iter().enumerate().collect();
    order.sort_by_key(|(n, r)| (r.1, *n));
    let mut covered = Decimal::ZERO;
    for (_, (sim, _, millionths, units)) in order.into_iter().filter(|(_, r)| has_allowance(r.0)) {
        let (volume, cost) = (Decimal::new(*millionths, 6), Decimal::new(*units, 10));
        let remaining = left
            .get_mut(if m.pooled { &usize::MAX } else { sim })
            .unwrap();
        let mb = volume.min(*remaining);
        *remaining -= mb;
        covered += match mb == volume {
            true => cost,
            false => (cost * mb / volume)
                .round_dp_with_strategy(10, RoundingStrategy::MidpointNearestEven),
        };
    }
    let usage: Decimal = m.records.iter().map(|r| Decimal::new(r.3, 10)).sum();
    (fees, allowance_fees, covered, usage)
}

fn price_list(m: &Model) -> String {
    let version = |from: &str, (fee, allowance, mb): Version| {
        format!(
            "[[tariff]]\nname = \"default\"\neffective_from = \"{from}\"\ncurrency = \"EUR\"\n\
             sim_fee = \"{}\"\nallowance_fee = \"{}\"\nallowance_volume_mb = \"{mb}\"\n\
             allowance_pooled = {}\nallowance_prorated = {}\n",
            Decimal::new(fee, 2),
            Decimal::new(allowance, 2),
            m.pooled,
            m.prorated
        )
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, m.v2_day).unwrap();
    version("2026-01-01", m.v1) + &version(&day.to_string(), m.v2)
}

fn lines(m: &Model) -> (Vec<String>, Vec<String>) {
    let mut events = Vec::new();
    for (n, activated) in m.activations.iter().enumerate() {
        events.push(registered(
            &format!("r{n}"),
            "2026-10-01T00:00:00Z",
            &iccid(n),
            WORKSPACE,
        ));
        events.push(status(
            &format!("a{n}"),
            &at(*activated),
            &iccid(n),
            WORKSPACE,
            "ACTIVATED",
        ));
    }
    let usage = (m.records.iter().enumerate())
        .map(|(n, (sim, start, millionths, units))| {
            let (volume, cost) = (Decimal::new(*millionths, 6), Decimal::new(*units, 10));
            data_record(
                n as u64 + 1,
                &iccid(*sim),
                &at(*start),
                &at(start + 600),
                volume,
                cost,
            )
        })
        .collect();
    (usage, events)
}

fn version() -> impl Strategy<Value = Version> {
    (0i64..500, 0i64..1_000, 0i64..3_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn fees_allowances_and_included_data_follow_the_model(
        activations in prop::collection::vec(-10 * 86_400i64..MONTH_SECONDS - 86_400, 1..5),
        records in prop::collection::vec(
            (0usize..5, 0i64..MONTH_SECONDS - 3_600, 1i64..1_500_000_000, 0i64..50_000_000_000),
            0..30,
        ),
        v1 in version(),
        v2 in version(),
        v2_day in 2u32..29,
        pooled in any::<bool>(),
        prorated in any::<bool>(),
    ) {
        let sims = activations.len();
        let records = (records.into_iter())
            .map(|(sim, start, mb, cost)| (sim % sims, start, mb, cost))
            .collect();
        let model = Model { activations, records, v1, v2, v2_day, pooled, prorated };
        let (fees, allowance_fees, covered, usage) = expected(&model);
        let (usage_lines, events) = lines(&model);
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let prices = dir.path().join("prices.toml");
            std::fs::write(&prices, price_list(&model)).unwrap();
            let lake = common::lake_of_lines(&dir, &usage_lines, &events).await;
            let run = invoice(&lake, &InvoiceOptions {
                period: "2026-11".parse().unwrap(),
                workspaces: vec![WORKSPACE],
                prices,
                out: dir.path().join("out"),
                issue: false,
                pdf: None,
            }).await.unwrap();
            let (invoice, _) = &run.invoices[0];
            let total = |amounts: Vec<Decimal>| amounts.into_iter().sum::<Decimal>();
            prop_assert_eq!(total(invoice.sim_fees.iter().map(|l| l.amount).collect()), fees);
            prop_assert_eq!(total(invoice.allowances.iter().map(|l| l.amount).collect()), allowance_fees);
            prop_assert_eq!(total(invoice.usage.iter().map(|l| l.amount).collect()), usage);
            prop_assert_eq!(total(invoice.allowance_cover.iter().map(|l| l.amount).collect()), -covered);
            let exact = invoice.totals.iter().map(|t| t.exact_total).sum::<Decimal>();
            prop_assert_eq!(exact, usage + fees + allowance_fees - covered);
            Ok(())
        })?;
    }
}
