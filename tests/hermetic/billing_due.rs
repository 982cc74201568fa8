//! `invoice --due`, as a nightly scheduler runs it: each Workspace's month is issued once it
//! has closed in the Workspace's time zone, runs at the same time issue it once, and runs
//! again change nothing.

use crate::common;

use chrono::{DateTime, Utc};
use common::books::Books;
use common::wire::{registered, status, usage};
use simtally::billing::{due, DueOptions, InvoiceStatus, Provenance};

const PRICES: &str = r#"
[[tariff]]
name = "default"
effective_from = "2026-01-01"
currency = "EUR"
sim_fee = "1.00"
allowance_fee = "0"
allowance_volume_mb = "0"

[[workspace]]
id = 104
time_zone = "Europe/Berlin"

[[workspace]]
id = 105
time_zone = "America/New_York"
"#;

fn iccid(workspace: i64) -> String {
    format!("8988303000010000{workspace}")
}

fn options(books: &Books, now: &str) -> DueOptions {
    DueOptions {
        prices: books.dir.path().join("prices.toml"),
        out: books.dir.path().join("due"),
        now: DateTime::parse_from_rfc3339(now)
            .unwrap()
            .with_timezone(&Utc),
        grace: chrono::Duration::hours(2),
        pdf: None,
    }
}

/// (Workspace, period) of what a run issued now, sorted.
fn issued_now(run: &simtally::billing::DueRun) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = (run.issued.iter())
        .flat_map(|(_, r)| &r.invoices)
        .filter(|(_, p)| *p == Provenance::IssuedNow)
        .map(|(i, _)| (i.workspace_id, i.period.clone()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_month_is_issued_once_it_closes_in_its_workspaces_zone() {
    let mut books = Books::new(PRICES);
    let mut events = Vec::new();
    let mut records = Vec::new();
    for (n, workspace) in [101, 104, 105].into_iter().enumerate() {
        let sim = iccid(workspace);
        events.push(registered(
            &format!("r{n}"),
            "2026-11-01T12:00:00Z",
            &sim,
            workspace,
        ));
        events.push(status(
            &format!("a{n}"),
            "2026-11-01T12:00:00Z",
            &sim,
            workspace,
            "ACTIVATED",
        ));
        records.push(usage(
            n as u64 + 1,
            &sim,
            "2026-11-10T10:00:00Z",
            "2026-11-10T10:05:00Z",
            "0.50",
        ));
    }
    books.ingest(&records, &events).await;

    // 03:00 UTC on 1 December, two hours of grace: November has closed in UTC and in Berlin
    // (since 23:00 UTC), not yet in New York (05:00 UTC). Two schedulers fire at once.
    let at_three = options(&books, "2026-12-01T03:00:00Z");
    let (first, second) = tokio::join!(due(&books.lake, &at_three), due(&books.lake, &at_three));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut both = [issued_now(&first), issued_now(&second)].concat();
    both.sort();
    assert_eq!(
        both,
        [(101, "2026-11".to_owned()), (104, "2026-11".to_owned())],
        "issued once between the two runs"
    );
    // The month in progress is drafted.
    let (period, drafts) = &first.drafts;
    assert_eq!(period.to_string(), "2026-12");
    assert!(drafts
        .invoices
        .iter()
        .all(|(i, _)| i.status == InvoiceStatus::Draft));
    assert!(books
        .dir
        .path()
        .join("due/2026-11/101-2026-11.html")
        .exists());
    // New York's draft is no draft inside an issued period: its zone has not issued yet.
    assert!(books.balances("2026-11").await);

    // Run again later that morning: New York's November has closed now; nothing else moves.
    let again = due(&books.lake, &options(&books, "2026-12-01T12:00:00Z"))
        .await
        .unwrap();
    assert_eq!(issued_now(&again), [(105, "2026-11".to_owned())]);
    for period in ["2026-11", "2026-12"] {
        assert!(books.balances(period).await, "{period}");
    }
}
