#![allow(dead_code)]

pub mod access;
pub mod books;
pub mod browser;
pub mod kafka;
pub mod pg;
pub mod runs;
pub mod server;
pub mod transfers;
pub mod wire;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::util::display::array_value_to_string;
use simtally::lake::{Lake, LakeLocation};
use simtally::pipeline::{ingest, IngestOptions, RunSummary};
use simtally::query::{open_session, run_sql, session_memory_bytes, Scope};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

/// The shared reference fixtures, beside the checkout (CI lays them there too).
pub fn shared_fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures")
        .join(name)
}

pub fn testdata(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(path)
}

pub fn local_lake(dir: &tempfile::TempDir) -> Lake {
    Lake::new(LakeLocation::parse(&dir.path().join("lake").display().to_string()).unwrap())
}

pub async fn ingest_files(lake: &Lake, usage: &[PathBuf], events: &[PathBuf]) -> RunSummary {
    ingest(
        lake,
        IngestOptions {
            usage: usage.iter().cloned().map(Input::File).collect(),
            events: events.iter().cloned().map(Input::File).collect(),
            progress: false,
            threads: 2,
            ..IngestOptions::default()
        },
        CancellationToken::new(),
    )
    .await
    .expect("ingest succeeds")
}

/// Writes `usage` and `events` lines as NDJSON files into `dir` and ingests them into a lake
/// there.
pub async fn lake_of_lines(dir: &tempfile::TempDir, usage: &[String], events: &[String]) -> Lake {
    let write = |name: &str, lines: &[String]| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    };
    let (u, e) = (write("usage.ndjson", usage), write("events.ndjson", events));
    let lake = local_lake(dir);
    ingest_files(&lake, &[u], &[e]).await;
    lake
}

/// Runs SQL over the whole lake and renders every cell as text (decimals keep every digit).
pub async fn rows(lake: &Lake, sql: &str) -> Vec<Vec<String>> {
    let ctx = open_session(lake, &Scope::default(), session_memory_bytes())
        .await
        .unwrap();
    to_strings(&run_sql(&ctx, sql).await.unwrap())
}

pub fn to_strings(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap())
                    .collect(),
            );
        }
    }
    out
}

/// The sample's events split at its first transfer, in two files: the events before it
/// (registrations and status changes) and the events from it on.
pub fn split_sample_events(dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(shared_fixture("sample-1/events.ndjson")).unwrap();
    let (mut registrations, mut later) = (String::new(), String::new());
    for line in text.lines() {
        let transfer_seen = !later.is_empty();
        if line.contains("\"sim_transferred\"") || transfer_seen {
            later.push_str(line);
            later.push('\n');
        } else {
            registrations.push_str(line);
            registrations.push('\n');
        }
    }
    assert!(
        later.contains("sim_transferred"),
        "the sample has transfers"
    );
    let (first, second) = (dir.join("registrations.ndjson"), dir.join("later.ndjson"));
    std::fs::write(&first, registrations).unwrap();
    std::fs::write(&second, later).unwrap();
    (first, second)
}

/// The reference fixture's expected totals.
pub fn sample_1_expected() -> serde_json::Value {
    let text = std::fs::read_to_string(shared_fixture("sample-1/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Asserts that `lake` holds what ingesting sample-1 once must give, by the fixture's
/// expected totals (computed by its generator, not by simtally): every Workspace's distinct
/// records and exact sums, every Workspace day, the quarantine by reason, and every stored
/// row, event and dead letter once.
pub async fn assert_sample_1(lake: &Lake) {
    let expected = sample_1_expected();
    let text = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    let per_workspace = rows(
        lake,
        "SELECT workspace_id, COUNT(DISTINCT record_id), SUM(volume_total), SUM(cost) \
         FROM usage GROUP BY workspace_id ORDER BY workspace_id",
    )
    .await;
    let want: Vec<Vec<String>> = expected["workspaces"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(ws, v)| {
            let records = v["records"].to_string();
            vec![
                ws.clone(),
                records,
                text(&v["volume_total"]),
                text(&v["cost"]),
            ]
        })
        .collect();
    assert_eq!(per_workspace, want, "per-Workspace totals");
    let per_day = rows(
        lake,
        "SELECT CONCAT(CAST(workspace_id AS VARCHAR), '|', CAST(usage_date AS VARCHAR)), \
         SUM(volume_total), SUM(cost) FROM usage GROUP BY 1 ORDER BY 1",
    )
    .await;
    let want: Vec<Vec<String>> = expected["days"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| vec![k.clone(), text(&v["volume_total"]), text(&v["cost"])])
        .collect();
    assert_eq!(per_day, want, "per-Workspace-and-day totals");
    let quarantine = rows(
        lake,
        "SELECT reason, COUNT(*), SUM(volume_total), SUM(cost) FROM quarantine \
         GROUP BY reason ORDER BY reason",
    )
    .await;
    let want: Vec<Vec<String>> = expected["quarantine"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(reason, v)| {
            let slices = v["slices"].to_string();
            vec![
                reason.clone(),
                slices,
                text(&v["volume_total"]),
                text(&v["cost"]),
            ]
        })
        .collect();
    assert_eq!(quarantine, want, "quarantine by reason");
    for (what, sql) in [
        (
            "usage rows",
            "SELECT COUNT(*) FROM (SELECT record_id, slice FROM usage_ledger \
             GROUP BY 1, 2 HAVING COUNT(*) > 1)",
        ),
        (
            "quarantine rows",
            "SELECT COUNT(*) FROM (SELECT record_id, slice FROM quarantine_ledger \
             GROUP BY 1, 2 HAVING COUNT(*) > 1)",
        ),
        (
            "events",
            "SELECT COUNT(*) - COUNT(DISTINCT event_id) FROM sim_events",
        ),
        (
            "dead letters",
            "SELECT COUNT(*) - COUNT(DISTINCT source) FROM dead_letters",
        ),
    ] {
        assert_eq!(
            rows(lake, sql).await,
            vec![vec!["0".to_owned()]],
            "{what} stored twice"
        );
    }
    let dead = rows(lake, "SELECT COUNT(*) FROM dead_letters").await;
    assert!(dead[0][0].parse::<u64>().unwrap() >= expected["dead_letters_min"].as_u64().unwrap());
}

/// The fixture's totals, `lake check` passes, and the books of November balance against the
/// run records (every record accounted for by the runs that stored it).
pub async fn assert_sample_1_and_books(lake: &Lake) {
    assert_sample_1(lake).await;
    let checked = simtally::query::check_lake(lake).await.unwrap();
    assert!(checked.passes(), "{checked}");
    let prices = testdata("prices.toml");
    let books = simtally::billing::reconcile(
        lake,
        simtally::billing::Period::new(2026, 11).unwrap(),
        &prices,
    )
    .await
    .unwrap();
    assert!(books.balances(), "{books}");
}
