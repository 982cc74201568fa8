//! Over random data: the usage charges of all invoices, over all Workspaces and periods,
//! equal the cost of every input record minus what the model says is quarantined or
//! dead-lettered, exactly.

use crate::common;

use proptest::prelude::*;
use rust_decimal::Decimal;
use simtally::billing::{invoice, InvoiceOptions};

use common::wire::{registered, transferred, usage};

const WORKSPACES: [i64; 3] = [101, 102, 103];
const UNKNOWN_SIM: &str = "8988303000099999999";

/// A SIM: registered this many seconds after the start, then moved (gap, target) times.
type Sim = (u64, Vec<(u64, usize)>);
/// A record: SIM index (past the end: a SIM never registered), start and length in seconds,
/// cost in units of 10^-10, and what happens to it (0: damaged, 1: delivered twice, 2: it
/// straddles its SIM's registration).
type Record = (usize, u64, u64, i64, u8);

fn at(seconds: u64) -> String {
    common::wire::seconds_after_start(seconds)
}

fn iccid(sim: usize) -> String {
    format!("89883030000100{sim:05}")
}

fn events(sims: &[Sim]) -> Vec<String> {
    let mut lines = Vec::new();
    for (n, (registered_at, moves)) in sims.iter().enumerate() {
        let mut owner = WORKSPACES[n % 3];
        let mut t = *registered_at;
        lines.push(registered(&format!("r{n}"), &at(t), &iccid(n), owner));
        for (m, (gap, pick)) in moves.iter().enumerate() {
            t += gap;
            let others: Vec<i64> = WORKSPACES.into_iter().filter(|w| *w != owner).collect();
            let target = others[pick % others.len()];
            lines.push(transferred(
                &format!("t{n}-{m}"),
                &at(t),
                &iccid(n),
                owner,
                target,
            ));
            owner = target;
        }
    }
    lines
}

/// The usage lines, the cost of every distinct record, and the cost of the damaged ones.
fn usage_lines(sims: usize, records: &[Record]) -> (Vec<String>, Decimal, Decimal) {
    let (mut lines, mut total, mut damaged) = (Vec::new(), Decimal::ZERO, Decimal::ZERO);
    for (n, (sim, start, length, units, fate)) in records.iter().enumerate() {
        let cost = Decimal::new(*units, 10);
        let sim = if *sim < sims {
            iccid(*sim)
        } else {
            UNKNOWN_SIM.into()
        };
        let sim = if *fate == 0 { "12345".into() } else { sim };
        let line = usage(
            n as u64 + 1,
            &sim,
            &at(*start),
            &at(start + length),
            &cost.to_string(),
        );
        total += cost;
        if *fate == 0 {
            damaged += cost;
        }
        if *fate == 1 {
            lines.push(line.clone());
        }
        lines.push(line);
    }
    (lines, total, damaged)
}

/// What the model says is quarantined: records of a SIM never registered, wholly; records
/// of a registered SIM, their part before its registration. A record is cut at its SIM's
/// registration and transfers, and its cost shared by the pieces' durations, largest
/// remainder first (earlier piece first among equals), in units of 10^-10.
fn quarantined_by_model(sims: &[Sim], records: &[Record]) -> Decimal {
    let mut units = 0i128;
    for (sim, start, length, cost, fate) in records {
        if *fate == 0 {
            continue;
        }
        let Some((registered_at, moves)) = sims.get(*sim) else {
            units += i128::from(*cost);
            continue;
        };
        let end = start + length;
        if end <= *registered_at {
            units += i128::from(*cost);
            continue;
        }
        if start >= registered_at {
            continue;
        }
        let mut cuts = vec![*start, *registered_at];
        let mut t = *registered_at;
        for (gap, _) in moves {
            t += gap;
            if t > *start && t < end {
                cuts.push(t);
            }
        }
        cuts.push(end);
        let weights: Vec<i128> = cuts.windows(2).map(|w| i128::from(w[1] - w[0])).collect();
        let total: i128 = weights.iter().sum();
        let cost = i128::from(*cost);
        let mut parts: Vec<i128> = weights.iter().map(|w| cost * w / total).collect();
        let mut order: Vec<(i128, usize)> = (weights.iter().enumerate())
            .map(|(i, w)| (cost * w % total, i))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let leftover = cost - parts.iter().sum::<i128>();
        for (_, i) in order.iter().take(leftover as usize) {
            parts[*i] += 1;
        }
        units += parts[0];
    }
    Decimal::from_i128_with_scale(units, 10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn invoiced_usage_is_input_minus_quarantined_and_dead_lettered(
        sims in prop::collection::vec(
            (0u64..10 * 86_400, prop::collection::vec((3_600u64..15 * 86_400, 0usize..2), 0..3)),
            1..4,
        ),
        records in prop::collection::vec(
            (0usize..5, 0u64..50 * 86_400, 60u64..3 * 3_600, 0i64..100_000_000_000, 0u8..10),
            1..40,
        ),
    ) {
        // Fate 2: the record straddles its SIM's registration (part of it is quarantined).
        let records: Vec<Record> = (records.into_iter())
            .map(|(sim, start, length, units, fate)| match sims.get(sim) {
                Some((registered_at, _)) if fate == 2 => {
                    (sim, registered_at.saturating_sub(length / 2), length, units, fate)
                }
                _ => (sim, start, length, units, fate),
            })
            .collect();
        let (lines, input, dead) = usage_lines(sims.len(), &records);
        let events = events(&sims);
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let prices = dir.path().join("prices.toml");
            std::fs::write(&prices, "[[tariff]]\nname = \"default\"\neffective_from = \"2026-01-01\"\n\
                currency = \"EUR\"\nsim_fee = \"1\"\nallowance_fee = \"0\"\nallowance_volume_mb = \"0\"\n").unwrap();
            let lake = common::lake_of_lines(&dir, &lines, &events).await;
            let quarantined = quarantined_by_model(&sims, &records);

            let mut invoiced = Decimal::ZERO;
            for period in ["2026-10", "2026-11", "2026-12"] {
                let run = invoice(&lake, &InvoiceOptions {
                    period: period.parse().unwrap(),
                    workspaces: Vec::new(),
                    prices: prices.clone(),
                    out: dir.path().join("out"),
                    issue: false,
                    pdf: None,
                }).await.unwrap();
                invoiced += run.invoices.iter().flat_map(|(i, _)| &i.usage).map(|l| l.amount).sum::<Decimal>();
            }
            prop_assert_eq!(invoiced, input - quarantined - dead);
            Ok(())
        })?;
    }
}
