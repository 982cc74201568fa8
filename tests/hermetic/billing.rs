//! Invoices from a real lake: each billing rule, sealing, adjustments, reconciliation.

use crate::common;

use common::books::{d, fee_sims, of, usage_total, Books};
use common::wire::{registered, status, transferred, usage};

use std::path::Path;

use rust_decimal::Decimal;
use simtally::billing::{reconcile, AdjustmentKind, Invoice, InvoiceStatus};

const A: i64 = 101;
const B: i64 = 102;
const C: i64 = 103;
const SIM: &str = "8988303000010000117";
const SIM2: &str = "8988303000010000125";
const SIM3: &str = "8988303000010000133";

const PRICES: &str = concat!(
    crate::standard_tariff!(),
    r#"
[[workspace]]
id = 104
time_zone = "Europe/Berlin"
"#
);

/// SIM registered and activated in A on 1 November.
fn activated_in_a() -> Vec<String> {
    vec![
        registered("e1", "2026-11-01T00:00:00Z", SIM, A),
        status("e2", "2026-11-01T00:00:00Z", SIM, A, "ACTIVATED"),
    ]
}

#[tokio::test]
async fn a_transfer_in_the_middle_of_a_data_session_splits_its_charge() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.push(transferred("e3", "2026-11-10T10:05:00Z", SIM, A, B));
    let session = usage(
        1,
        SIM,
        "2026-11-10T10:00:00Z",
        "2026-11-10T10:20:00Z",
        "0.3000000000",
    );
    books.ingest(&[session], &events).await;
    let run = books.draft("2026-11").await;
    let (a, b) = (of(&run, A).unwrap(), of(&run, B).unwrap());
    assert_eq!(
        usage_total(a),
        d("0.075"),
        "5 of 20 minutes before the transfer"
    );
    assert_eq!(usage_total(b), d("0.225"));
    assert_eq!(fee_sims(a), [SIM]);
    assert!(
        b.sim_fees.is_empty(),
        "moved while ACTIVATED, never activated in B"
    );
    assert!(books.balances("2026-11").await);
}

#[tokio::test]
async fn a_chain_a_b_c_in_one_month_bills_each_stretch_and_each_activation() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.extend([
        transferred("e3", "2026-11-10T00:00:00Z", SIM, A, B),
        status("e4", "2026-11-10T00:00:00Z", SIM, B, "SUSPENDED"),
        status("e5", "2026-11-12T00:00:00Z", SIM, B, "ACTIVATED"),
        transferred("e6", "2026-11-20T00:00:00Z", SIM, B, C),
        status("e7", "2026-11-20T00:00:00Z", SIM, C, "SUSPENDED"),
    ]);
    let records = [
        usage(
            1,
            SIM,
            "2026-11-05T00:00:00Z",
            "2026-11-05T01:00:00Z",
            "1.0000000000",
        ),
        usage(
            2,
            SIM,
            "2026-11-15T00:00:00Z",
            "2026-11-15T01:00:00Z",
            "2.0000000000",
        ),
        usage(
            3,
            SIM,
            "2026-11-25T00:00:00Z",
            "2026-11-25T01:00:00Z",
            "4.0000000000",
        ),
    ];
    books.ingest(&records, &events).await;
    let run = books.draft("2026-11").await;
    let (a, b, c) = (
        of(&run, A).unwrap(),
        of(&run, B).unwrap(),
        of(&run, C).unwrap(),
    );
    assert_eq!(
        [usage_total(a), usage_total(b), usage_total(c)],
        [d("1"), d("2"), d("4")]
    );
    assert_eq!(fee_sims(a), [SIM]);
    assert_eq!(fee_sims(b), [SIM], "activated in B on the 12th");
    assert!(c.sim_fees.is_empty(), "C never activated it");
    assert_eq!(b.allowances.len(), 1);
    assert!(books.balances("2026-11").await);
}

#[tokio::test]
async fn a_sim_activated_in_both_workspaces_pays_fee_and_allowance_in_both() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.extend([
        transferred("e3", "2026-11-15T00:00:00Z", SIM, A, B),
        status("e4", "2026-11-16T00:00:00Z", SIM, B, "ACTIVATED"),
    ]);
    books.ingest(&[], &events).await;
    let run = books.draft("2026-11").await;
    for workspace in [A, B] {
        let invoice = of(&run, workspace).unwrap();
        assert_eq!(fee_sims(invoice), [SIM]);
        assert_eq!(invoice.allowances.len(), 1);
        assert_eq!(invoice.totals[0].total, d("5.50"));
    }
    // December: only B still has it ACTIVATED.
    let december = books.draft("2026-12").await;
    assert!(of(&december, A).is_none(), "nothing to bill A");
    assert_eq!(fee_sims(of(&december, B).unwrap()), [SIM]);
}

#[tokio::test]
async fn a_suspended_sim_pays_no_fee_from_the_next_month() {
    let mut books = Books::new(PRICES);
    let events = [
        registered("e1", "2026-10-01T00:00:00Z", SIM, A),
        status("e2", "2026-10-05T00:00:00Z", SIM, A, "ACTIVATED"),
        status("e3", "2026-11-10T00:00:00Z", SIM, A, "SUSPENDED"),
    ];
    books.ingest(&[], &events).await;
    assert_eq!(
        fee_sims(of(&books.draft("2026-10").await, A).unwrap()),
        [SIM]
    );
    assert_eq!(
        fee_sims(of(&books.draft("2026-11").await, A).unwrap()),
        [SIM]
    );
    assert!(of(&books.draft("2026-12").await, A).is_none());
}

#[tokio::test]
async fn a_transfer_at_midnight_of_the_month_boundary() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.extend([
        transferred("e3", "2026-12-01T00:00:00Z", SIM, A, B),
        status("e4", "2026-12-01T00:00:00Z", SIM, B, "ACTIVATED"),
    ]);
    let across = usage(
        1,
        SIM,
        "2026-11-30T23:50:00Z",
        "2026-12-01T00:10:00Z",
        "0.2000000000",
    );
    books.ingest(&[across], &events).await;
    let (nov, dec) = (books.draft("2026-11").await, books.draft("2026-12").await);
    assert_eq!(usage_total(of(&nov, A).unwrap()), d("0.1"));
    assert!(of(&nov, B).is_none());
    assert_eq!(fee_sims(of(&nov, A).unwrap()), [SIM]);
    assert!(of(&dec, A).is_none(), "not one instant of December in A");
    let b = of(&dec, B).unwrap();
    assert_eq!((usage_total(b), fee_sims(b)), (d("0.1"), vec![SIM]));
    assert!(books.balances("2026-11").await && books.balances("2026-12").await);
}

#[tokio::test]
async fn a_workspace_time_zone_moves_usage_into_its_own_month() {
    let mut books = Books::new(PRICES);
    let events = [registered("e1", "2026-10-01T00:00:00Z", SIM, 104)];
    // 23:30 UTC on 31 October is 00:30 on 1 November in Berlin.
    let record = usage(
        1,
        SIM,
        "2026-10-31T23:30:00Z",
        "2026-10-31T23:40:00Z",
        "0.5000000000",
    );
    books.ingest(&[record], &events).await;
    let nov = books.draft("2026-11").await;
    assert_eq!(usage_total(of(&nov, 104).unwrap()), d("0.5"));
    assert_eq!(
        of(&nov, 104).unwrap().period_start,
        "2026-10-31T23:00:00.000Z"
    );
    assert!(of(&books.draft("2026-10").await, 104).is_none());
    assert!(books.balances("2026-11").await && books.balances("2026-10").await);
}

/// The invoice files in `dir` whose names start with `prefix`: (name, text), by name.
fn files(dir: &Path, prefix: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, p)| (name, std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn late_data_for_a_sealed_period_never_changes_it_and_is_billed_once_later() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.push(registered("e10", "2026-10-01T00:00:00Z", SIM2, A));
    events.push(status("e11", "2026-11-02T00:00:00Z", SIM2, A, "ACTIVATED"));
    // B has a SIM of its own, so B's November is issued (and sealed) too.
    events.push(registered("e20", "2026-10-01T00:00:00Z", SIM3, B));
    events.push(status("e21", "2026-10-01T00:00:00Z", SIM3, B, "ACTIVATED"));
    let first = usage(
        1,
        SIM,
        "2026-11-05T00:00:00Z",
        "2026-11-05T01:00:00Z",
        "1.0000000000",
    );
    books.ingest(&[first], &events).await;
    let issued = books.issue("2026-11").await;
    let sealed_a = of(&issued, A).unwrap().clone();
    assert_eq!(sealed_a.sim_fees.len(), 2);
    let sealed_files = files(&books.out("2026-11"), "101-");
    assert_eq!(sealed_files.len(), 4, "json, csv, html and the annex");

    // After the seal: a late transfer of SIM to B on 20 November, activated there; late
    // usage on both sides of it; and a transfer of SIM2 to B on 1 November, before its
    // activation in A, which takes A's fee for SIM2 away.
    let late_events = [
        transferred("e3", "2026-11-20T00:00:00Z", SIM, A, B),
        status("e4", "2026-11-21T00:00:00Z", SIM, B, "ACTIVATED"),
        transferred("e12", "2026-11-01T00:00:00Z", SIM2, A, B),
    ];
    let late_usage = [
        usage(
            2,
            SIM,
            "2026-11-06T00:00:00Z",
            "2026-11-06T01:00:00Z",
            "0.2500000000",
        ),
        usage(
            3,
            SIM,
            "2026-11-22T00:00:00Z",
            "2026-11-22T01:00:00Z",
            "0.7500000000",
        ),
    ];
    books.ingest(&late_usage, &late_events).await;

    // The sealed invoices are reproduced byte for byte, whatever arrived since.
    let again = books.draft("2026-11").await;
    assert_eq!(of(&again, A).unwrap(), &sealed_a);
    assert!(files(&books.out("2026-11"), "101-") == sealed_files);
    assert!(
        books.balances("2026-11").await,
        "late data is pending, not missing"
    );

    // December carries the adjustments to November, with references.
    let dec = books.issue("2026-12").await;
    let a = of(&dec, A).unwrap();
    let adjustments: Vec<_> = a
        .adjustments
        .iter()
        .map(|l| (l.kind, l.reference.as_str(), l.amount))
        .collect();
    assert_eq!(
        adjustments,
        [
            (AdjustmentKind::Usage, "2/0", d("0.25")),
            (AdjustmentKind::SimFee, SIM2, d("-1.50")),
            (AdjustmentKind::Allowance, SIM2, d("-4.00")),
            // The late 2 MB are within SIM's 500 MB in A: credited as included.
            (AdjustmentKind::AllowanceCover, SIM, d("-0.25")),
        ]
    );
    let b = of(&dec, B).unwrap();
    let mut b_adjustments: Vec<_> = b
        .adjustments
        .iter()
        .map(|l| (l.kind, l.reference.as_str(), l.amount))
        .collect();
    b_adjustments.sort();
    assert_eq!(
        b_adjustments,
        [
            (AdjustmentKind::Usage, "3/0", d("0.75")),
            (AdjustmentKind::SimFee, SIM, d("1.50")),
            (AdjustmentKind::Allowance, SIM, d("4.00")),
            (AdjustmentKind::AllowanceCover, SIM, d("-0.75")),
        ]
    );
    assert!(a.adjustments.iter().all(|l| l.period == "2026-11"));
    assert!(books.balances("2026-11").await && books.balances("2026-12").await);

    // January: nothing of November is billed again.
    let jan = books.draft("2027-01").await;
    for workspace in [A, B] {
        if let Some(invoice) = of(&jan, workspace) {
            assert!(invoice.adjustments.is_empty(), "{:?}", invoice.adjustments);
        }
    }
}

#[tokio::test]
async fn a_late_transfer_after_the_seal_moves_billed_usage_by_a_reversal_adjustment() {
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.push(registered("e20", "2026-10-01T00:00:00Z", SIM3, B));
    let record = usage(
        4,
        SIM,
        "2026-11-25T00:00:00Z",
        "2026-11-25T01:00:00Z",
        "2.0000000000",
    );
    books.ingest(&[record], &events).await;
    let issued = books.issue("2026-11").await;
    assert_eq!(usage_total(of(&issued, A).unwrap()), d("2"));

    // The SIM had moved to B on 20 November; the transfer arrives after the seal.
    books
        .ingest(&[], &[transferred("e3", "2026-11-20T00:00:00Z", SIM, A, B)])
        .await;
    assert!(books.balances("2026-11").await);
    // B owned a SIM when November was issued, so its November was sealed with a zero
    // invoice: the moved usage is B's adjustment in December, and A gives it back there.
    let november = books.draft("2026-11").await;
    assert_eq!(usage_total(of(&november, A).unwrap()), d("2"), "sealed");
    assert_eq!(usage_total(of(&november, B).unwrap()), d("0"), "sealed");
    let dec = books.issue("2026-12").await;
    let usage_adjustments = |workspace| -> Vec<(String, Decimal)> {
        of(&dec, workspace)
            .unwrap()
            .adjustments
            .iter()
            .filter(|l| l.kind == AdjustmentKind::Usage && l.period == "2026-11")
            .map(|l| (l.reference.clone(), l.amount))
            .collect()
    };
    // Slice 0 was billed to A; slice 1 is its reversal, slice 2 B's share.
    assert_eq!(usage_adjustments(A), [("4/1".to_owned(), d("-2"))]);
    assert_eq!(usage_adjustments(B), [("4/2".to_owned(), d("2"))]);
    assert!(books.balances("2026-11").await && books.balances("2026-12").await);
}

/// A Workspace whose SIMs are registered but have neither usage nor an activation yet is
/// sealed too: late usage for its month is an adjustment next month, never a draft inside
/// an issued month.
#[tokio::test]
async fn issuing_seals_a_workspace_that_only_has_registered_sims() {
    const QUIET: i64 = 301;
    let mut books = Books::new(PRICES);
    let mut events = activated_in_a();
    events.push(registered("e30", "2026-11-02T00:00:00Z", SIM2, QUIET));
    let a_usage = usage(
        1,
        SIM,
        "2026-11-05T00:00:00Z",
        "2026-11-05T01:00:00Z",
        "1.0000000000",
    );
    books.ingest(&[a_usage], &events).await;
    let issued = books.issue("2026-11").await;
    let quiet = of(&issued, QUIET).expect("the quiet Workspace is sealed");
    assert!(
        quiet.totals.iter().all(|t| t.exact_total.is_zero()),
        "{quiet:?}"
    );
    assert!(books.out("2026-11").join("301-2026-11.json").exists());

    let late = usage(
        2,
        SIM2,
        "2026-11-10T00:00:00Z",
        "2026-11-10T01:00:00Z",
        "2.5000000000",
    );
    books.ingest(&[late], &[]).await;
    let dec = books.draft("2026-12").await;
    let adjustments: Vec<_> = of(&dec, QUIET)
        .expect("the late usage reaches December")
        .adjustments
        .iter()
        .map(|l| (l.period.as_str(), l.reference.as_str(), l.amount))
        .collect();
    assert_eq!(adjustments, [("2026-11", "2/0", d("2.5"))]);
    let november = books.draft("2026-11").await;
    assert_eq!(usage_total(of(&november, QUIET).unwrap()), d("0"), "sealed");
    assert!(books.balances("2026-11").await);
}

/// `reconcile` fails on a draft inside an issued period (here: a Workspace issuing did not
/// know yet, whose backdated SIM brought usage for the month).
#[tokio::test]
async fn reconcile_fails_on_a_draft_inside_an_issued_period() {
    const NEW: i64 = 401;
    let mut books = Books::new(PRICES);
    books.ingest(&[], &activated_in_a()).await;
    books.issue("2026-11").await;
    assert!(books.balances("2026-11").await);
    let backdated = [
        registered("e40", "2026-11-03T00:00:00Z", SIM3, NEW),
        status("e41", "2026-11-03T00:00:00Z", SIM3, NEW, "ACTIVATED"),
    ];
    books.ingest(&[], &backdated).await;
    let november = books.draft("2026-11").await;
    assert_eq!(of(&november, NEW).unwrap().status, InvoiceStatus::Draft);
    assert!(!books.balances("2026-11").await);
    // Issuing the period again seals the newcomer; the books balance.
    books.issue("2026-11").await;
    assert!(books.balances("2026-11").await);
}

#[tokio::test]
async fn a_draft_computed_twice_from_the_same_versions_is_byte_identical() {
    let mut books = Books::new(PRICES);
    let records = [usage(
        1,
        SIM,
        "2026-11-05T00:00:00Z",
        "2026-11-05T01:00:00Z",
        "1.0000000000",
    )];
    books.ingest(&records, &activated_in_a()).await;
    books.draft("2026-11").await;
    let first = files(&books.out("2026-11"), "");
    std::fs::remove_dir_all(books.out("2026-11")).unwrap();
    let run = books.draft("2026-11").await;
    assert!(files(&books.out("2026-11"), "") == first);
    let names: Vec<&str> = first.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "101-2026-11.csv",
            "101-2026-11.html",
            "101-2026-11.json",
            "101-2026-11.sims.csv"
        ]
    );
    let json: Invoice = serde_json::from_str(&first[2].1).unwrap();
    assert_eq!(json.computed_from, run.versions);
}

#[tokio::test]
async fn reconcile_names_an_issued_invoice_that_does_not_equal_its_lines() {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
    use simtally::lake::LakeTable;

    let mut books = Books::new(PRICES);
    let records = [usage(
        1,
        SIM,
        "2026-10-05T00:00:00Z",
        "2026-10-05T01:00:00Z",
        "1.0000000000",
    )];
    let mut events = activated_in_a();
    events.push(registered("e0", "2026-10-01T00:00:00Z", SIM2, A));
    books.ingest(&records, &events).await;
    let issued = books.issue("2026-11").await;
    assert!(books.balances("2026-10").await);

    // An October invoice with a usage line no slice backs, and totals that leave it out,
    // stored as issued.
    let mut forged = of(&issued, A).unwrap().clone();
    forged.period = "2026-10".into();
    forged.invoice_id = "101-2026-10".into();
    forged.usage.push(simtally::billing::UsageLine {
        traffic_type: "data".into(),
        operator: None,
        mcc: None,
        mnc: None,
        currency: "EUR".into(),
        records: 1,
        slices: 1,
        volume: d("2"),
        amount: d("1"),
    });
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![A])),
        Arc::new(StringArray::from(vec!["2026-10"])),
        Arc::new(StringArray::from(vec!["101-2026-10"])),
        Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
        Arc::new(StringArray::from(vec![
            serde_json::to_string(&forged).unwrap()
        ])),
    ];
    let batch = RecordBatch::try_new(LakeTable::Invoices.schema(), columns).unwrap();
    let mut appender = books.lake.appender(LakeTable::Invoices).await.unwrap();
    appender.write(batch).await.unwrap();
    appender.commit(Vec::new()).await.unwrap();

    let period = "2026-10".parse().unwrap();
    let prices = books.dir.path().join("prices.toml");
    let report = reconcile(&books.lake, period, &prices).await.unwrap();
    assert!(!report.balances());
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.holds())
        .map(|c| c.what.as_str())
        .collect();
    assert!(
        failed.contains(&"invoice 101-2026-10: totals = sum of its lines"),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"invoice 101-2026-10: usage lines = cost of the slices it billed"),
        "it billed no slice of October: {failed:?}"
    );
    assert!(report.to_string().contains("MISMATCH"));
}
