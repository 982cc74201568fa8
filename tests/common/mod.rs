#![allow(dead_code)]

pub mod access;
pub mod kafka;
pub mod server;
pub mod wire;

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::util::display::array_value_to_string;
use simtally::lake::{Lake, LakeLocation};
use simtally::pipeline::{ingest, IngestOptions, RunSummary};
use simtally::query::{open_session, run_sql, Scope};
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
    let ctx = open_session(lake, &Scope::default()).await.unwrap();
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
