//! Re-deliveries older than the de-duplication window are still recognized: their day's
//! record ids are read from the lake when they arrive, so nothing is written twice.

use crate::common;

use common::{local_lake, rows, shared_fixture};
use simtally::pipeline::{ingest, IngestOptions};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

fn options(window_days: u32) -> IngestOptions {
    IngestOptions {
        usage: vec![Input::File(shared_fixture("sample-1/usage.ndjson"))],
        events: vec![Input::File(shared_fixture("sample-1/events.ndjson"))],
        threads: 2,
        dedup_window_days: Some(window_days),
        ..IngestOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_older_than_the_window_are_still_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let first = ingest(&lake, options(7), CancellationToken::new())
        .await
        .unwrap();
    let days = rows(&lake, "SELECT COUNT(DISTINCT usage_date) FROM usage").await;
    assert!(
        days[0][0].parse::<u32>().unwrap() > 1,
        "the sample spans days"
    );
    let sums = "SELECT workspace_id, COUNT(*), SUM(cost) FROM usage GROUP BY 1 ORDER BY 1";
    let before = rows(&lake, sums).await;

    // A window of no days: only the latest day's ids are loaded up front.
    let again = ingest(&lake, options(0), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.usage.records, 0);
    assert_eq!(again.usage.already_in_lake, first.usage.records);
    assert!(again.lake_versions.is_empty(), "{:?}", again.lake_versions);
    assert_eq!(rows(&lake, sums).await, before);
}
