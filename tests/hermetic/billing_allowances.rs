//! Allowances that include data (per SIM, pooled, prorated, late usage after the seal), and
//! tariff versions that take effect within a month.

use crate::common;

use common::books::{d, of, Books};
use common::wire::{data_usage, registered, status};
use rust_decimal::Decimal;
use simtally::billing::{AdjustmentKind, Invoice};

const PRICES: &str = r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "5.00"
allowance_volume_mb = "100"

[[tariff]]
name = "pooled"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "5.00"
allowance_volume_mb = "100"
allowance_pooled = true

[[tariff]]
name = "prorated"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "5.00"
allowance_volume_mb = "100"
allowance_prorated = true

[[workspace]]
id = 102
tariff = "pooled"

[[workspace]]
id = 103
tariff = "prorated"
"#;

fn iccid(n: u32) -> String {
    format!("89883030000100{n:05}")
}

fn activated(n: u32, workspace: i64, at: &str) -> Vec<String> {
    vec![
        registered(
            &format!("r{n}"),
            "2026-10-01T00:00:00Z",
            &iccid(n),
            workspace,
        ),
        status(&format!("a{n}"), at, &iccid(n), workspace, "ACTIVATED"),
    ]
}

/// A data record of SIM `n` on `day` of November at `hour`.
fn data(id: u64, n: u32, day: u32, hour: u32, mb: &str, cost: &str) -> String {
    let start = format!("2026-11-{day:02}T{hour:02}:00:00Z");
    let end = format!("2026-11-{day:02}T{hour:02}:30:00Z");
    data_usage(id, &iccid(n), &start, &end, mb, cost)
}

/// (kind, amount) of each adjustment line.
fn adjustments(invoice: &Invoice) -> Vec<(AdjustmentKind, Decimal)> {
    (invoice.adjustments.iter())
        .map(|l| (l.kind, l.amount))
        .collect()
}

/// (reference, covered MB, amount) of each cover line.
fn cover(invoice: &Invoice) -> Vec<(String, Decimal, Decimal)> {
    (invoice.allowance_cover.iter())
        .map(|l| (l.reference.clone(), l.covered_volume_mb, l.amount))
        .collect()
}

#[tokio::test]
async fn a_sims_allowance_credits_its_first_included_megabytes_and_bills_the_overage() {
    let mut books = Books::new(PRICES);
    let mut events = activated(1, 101, "2026-11-01T00:00:00Z");
    // A SIM of 101 without an activation: no allowance, nothing covered.
    events.push(registered("r9", "2026-10-01T00:00:00Z", &iccid(9), 101));
    let usage = [
        data(1, 1, 3, 0, "60", "0.60"),
        data(2, 1, 2, 0, "60", "0.60"),
        data(3, 9, 2, 0, "10", "0.10"),
    ];
    books.ingest(&usage, &events).await;
    let run = books.draft("2026-11").await;
    let invoice = of(&run, 101).unwrap();
    // In time order: record 2 (60 MB) whole, then 40 of record 1's 60 MB: 0.60 + 0.40.
    assert_eq!(cover(invoice), [(iccid(1), d("100"), d("-1.00"))]);
    let total = &invoice.totals[0];
    assert_eq!(
        (
            total.usage,
            total.allowances,
            total.allowance_cover,
            total.exact_total
        ),
        (d("1.30"), d("5.00"), d("-1.00"), d("6.30"))
    );
    assert!(books.balances("2026-11").await);
}

#[tokio::test]
async fn a_pool_covers_the_workspaces_sims_with_an_allowance_together() {
    let mut books = Books::new(PRICES);
    let events = [
        activated(2, 102, "2026-11-01T00:00:00Z"),
        activated(3, 102, "2026-11-01T00:00:00Z"),
    ]
    .concat();
    let usage = [
        data(1, 2, 2, 0, "150", "1.50"),
        data(2, 3, 3, 0, "30", "0.30"),
    ];
    books.ingest(&usage, &events).await;
    let run = books.draft("2026-11").await;
    // Per SIM, 100 + 30 MB would be covered; the pool of 200 MB covers all 180.
    assert_eq!(
        cover(of(&run, 102).unwrap()),
        [("pool".to_owned(), d("180"), d("-1.80"))]
    );
    assert_eq!(
        of(&run, 102).unwrap().allowance_cover[0].included_volume_mb,
        d("200")
    );
    assert!(books.balances("2026-11").await);
}

#[tokio::test]
async fn a_prorated_allowance_includes_the_share_of_the_month_from_activation() {
    let mut books = Books::new(PRICES);
    // Activated at the start of 16 November: 15 of November's 30 days remain.
    let events = activated(5, 103, "2026-11-16T00:00:00Z");
    books
        .ingest(&[data(1, 5, 20, 0, "80", "0.80")], &events)
        .await;
    let run = books.draft("2026-11").await;
    let invoice = of(&run, 103).unwrap();
    assert_eq!(cover(invoice), [(iccid(5), d("50"), d("-0.50"))]);
    assert_eq!(invoice.allowance_cover[0].included_volume_mb, d("50"));
}

#[tokio::test]
async fn late_usage_for_a_sealed_month_is_covered_by_its_allowance_next_month() {
    let mut books = Books::new(PRICES);
    let events = activated(1, 101, "2026-11-01T00:00:00Z");
    books
        .ingest(&[data(1, 1, 2, 0, "60", "0.60")], &events)
        .await;
    let issued = books.issue("2026-11").await;
    assert_eq!(
        cover(of(&issued, 101).unwrap()),
        [(iccid(1), d("60"), d("-0.60"))]
    );

    // 30 MB more for November, after the seal: billed in December and covered there too.
    books.ingest(&[data(2, 1, 10, 0, "30", "0.30")], &[]).await;
    let december = books.issue("2026-12").await;
    assert_eq!(
        adjustments(of(&december, 101).unwrap()),
        [
            (AdjustmentKind::Usage, d("0.30")),
            (AdjustmentKind::AllowanceCover, d("-0.30"))
        ]
    );
    assert!(books.balances("2026-11").await && books.balances("2026-12").await);

    // Another 30 MB, earlier in November than both: in time order the allowance now covers
    // 30 + 60 + 10 of the last 30 MB, so January credits 0.10 more (not 0.30).
    books.ingest(&[data(3, 1, 1, 0, "30", "0.30")], &[]).await;
    let january = books.draft("2027-01").await;
    assert_eq!(
        adjustments(of(&january, 101).unwrap()),
        [
            (AdjustmentKind::Usage, d("0.30")),
            (AdjustmentKind::AllowanceCover, d("-0.10"))
        ]
    );
    assert!(books.balances("2027-01").await);
}

#[tokio::test]
async fn a_tariff_version_effective_mid_month_prices_the_sims_activated_from_then() {
    let prices = r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "5.00"
allowance_volume_mb = "100"

[[tariff]]
name = "default"
effective_from = "2026-11-15"
currency = "EUR"
sim_fee = "2.00"
allowance_fee = "6.00"
allowance_volume_mb = "200"
"#;
    let mut books = Books::new(prices);
    let events = [
        activated(1, 101, "2026-11-01T00:00:00Z"),
        activated(2, 101, "2026-11-20T00:00:00Z"),
    ]
    .concat();
    let usage = [data(1, 2, 21, 0, "150", "1.50")];
    books.ingest(&usage, &events).await;
    let november = books.draft("2026-11").await;
    let invoice = of(&november, 101).unwrap();
    let fees: Vec<(String, Decimal, Option<&str>)> = (invoice.sim_fees.iter())
        .map(|l| (l.iccid.clone(), l.amount, l.tariff_version.as_deref()))
        .collect();
    assert_eq!(
        fees,
        [
            (iccid(1), d("1.00"), None),
            (iccid(2), d("2.00"), Some("2026-11-15"))
        ]
    );
    let allowances: Vec<(Decimal, Decimal)> = (invoice.allowances.iter())
        .map(|l| (l.amount, l.included_volume_mb))
        .collect();
    assert_eq!(allowances, [(d("5.00"), d("100")), (d("6.00"), d("200"))]);
    // SIM 2's 150 MB are within its 200 MB.
    assert_eq!(cover(invoice), [(iccid(2), d("150"), d("-1.50"))]);
    // December: the new version from the first day, for both.
    let december = books.draft("2026-12").await;
    let fees: Vec<(Decimal, Option<&str>)> = (of(&december, 101).unwrap().sim_fees.iter())
        .map(|l| (l.amount, l.tariff_version.as_deref()))
        .collect();
    assert_eq!(fees, [(d("2.00"), None), (d("2.00"), None)]);
    assert!(books.balances("2026-11").await);
}
