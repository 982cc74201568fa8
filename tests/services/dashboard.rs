//! The dashboard page in headless Chromium (Debian's package; scripts/test.sh installs it):
//! signed in with a token, it draws each Workspace's usage per day and the centralized
//! totals, with no error on the page's console.

use crate::common;

use common::access::{iccid, write, write_fixture};
use common::browser::render;
use common::server::{serve, token};
use common::{ingest_files, local_lake};
use simtally::query::QueryLimits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_draws_charts_and_centralized_totals_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    // One record of 102's billed in USD: its cost is drawn apart, never added to EUR.
    let dollars = common::wire::usage(
        1900,
        &iccid(102),
        "2026-10-02T12:00:00Z",
        "2026-10-02T12:05:00Z",
        "0.50",
    )
    .replace("EUR", "USD");
    let dollars = write(&dir.path().join("usd.ndjson"), &[dollars]);
    ingest_files(&lake, &[usage, dollars], &[events]).await;
    let server = serve(&lake, dir.path(), QueryLimits::default()).await;

    let url = format!("{}/#token={}", server.base, token("adam"));
    let screenshot = std::env::temp_dir().join("simtally-dashboard.png");
    let (dom, log) = tokio::task::spawn_blocking(move || render(&url, &screenshot))
        .await
        .unwrap();

    // Adam administers 101 and 102: one bar a day for each (2 days of EUR and of data, the
    // one day of USD).
    let charts = [
        ("data-currency=\"EUR\"", 2),
        ("data-currency=\"USD\"", 1),
        ("id=\"data-chart\"", 2),
    ];
    for (chart, days) in charts {
        let start = dom.find(chart).expect(chart);
        let section = &dom[start..];
        let section = &section[..section.find("</svg>").expect("a chart is drawn")];
        for ws in ["101", "102"] {
            assert_eq!(
                section.matches(&format!("data-workspace=\"{ws}\"")).count(),
                days,
                "{chart}: {section}"
            );
        }
        assert!(!section.contains("data-workspace=\"201\""));
    }
    let usd = &dom[dom.find("data-currency=\"USD\"").unwrap()..];
    assert!(usd.contains("data-value=\"0.5\""), "{usd}");
    let table = &dom[dom.find("id=\"centralized\"").unwrap()..];
    assert_eq!(table.matches("class=\"combined\"").count(), 3, "{table}");
    // The combined cost of 2026-10-02 in EUR: 1.01 + 1.02, the USD record apart.
    assert!(table.contains("2.03"), "{table}");
    assert!(table.contains("USD"), "{table}");
    assert!(
        dom.contains("<pre id=\"errors\" hidden=\"\"></pre>"),
        "page errors: {dom}"
    );
    assert!(!log.contains("Uncaught"), "{log}");
    assert!(!log.contains(":ERROR:CONSOLE"), "{log}");
}
