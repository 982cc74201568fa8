//! The acceptance test of the core pipeline: ingesting the shared reference fixture must
//! reproduce its expected.json exactly, read back from the lake with SQL.

use crate::common;

use std::collections::BTreeSet;

use common::{ingest_files, local_lake, rows, shared_fixture};
use serde_json::Value;

fn expected() -> Value {
    let text = std::fs::read_to_string(shared_fixture("sample-1/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn inputs() -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    (
        vec![shared_fixture("sample-1/usage.ndjson")],
        vec![shared_fixture("sample-1/events.ndjson")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_1_reproduces_expected_json_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = inputs();
    let summary = ingest_files(&lake, &usage, &events).await;
    let expected = expected();

    // Per Workspace (distinct records, exact sums), per Workspace and day, quarantine by
    // reason, and every row, event and dead letter stored once.
    common::assert_sample_1(&lake).await;

    // Dead letters, duplicates and the reconciliation totals.
    let dead = rows(&lake, "SELECT COUNT(*) FROM dead_letters").await;
    let dead: u64 = dead[0][0].parse().unwrap();
    assert_eq!(
        summary.usage.duplicates,
        expected["duplicates"].as_u64().unwrap()
    );
    assert_eq!(
        summary.usage.lines,
        expected["input_lines"].as_u64().unwrap()
    );
    assert_eq!(
        summary.usage.records,
        expected["valid_records"].as_u64().unwrap()
    );
    let attributed = rows(&lake, "SELECT SUM(volume_total) FROM usage").await;
    assert_eq!(attributed[0][0], expected["total_volume"].as_str().unwrap());
    assert!(summary.usage.is_conserved());
    assert!(summary.events.is_conserved());
    assert_eq!(
        summary.usage.dead_letters, dead,
        "every dead letter is in the table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingesting_the_same_input_twice_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = inputs();
    let count_all = "SELECT (SELECT COUNT(*) FROM usage) AS u, (SELECT COUNT(*) FROM quarantine) AS q, \
                     (SELECT COUNT(*) FROM dead_letters) AS d, (SELECT COUNT(*) FROM sim_events) AS e";
    let first = ingest_files(&lake, &usage, &events).await;
    let after_first = rows(&lake, count_all).await;
    let second = ingest_files(&lake, &usage, &events).await;
    let after_second = rows(&lake, count_all).await;

    assert_eq!(after_first, after_second);
    assert_eq!(second.usage.records, 0);
    assert_eq!(second.usage.already_in_lake, first.usage.records);
    assert_eq!(second.events.accepted, 0);
    assert_eq!(second.events.duplicates, first.events.accepted);
    assert!(second.usage.is_conserved() && second.events.is_conserved());
    assert!(
        second.lake_versions.is_empty(),
        "no commit when nothing is new: {:?}",
        second.lake_versions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_ingested_after_its_events_uses_the_events_in_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = inputs();
    ingest_files(&lake, &[], &events).await;
    ingest_files(&lake, &usage, &[]).await;
    let per_workspace = rows(
        &lake,
        "SELECT workspace_id, SUM(cost) FROM usage GROUP BY 1 ORDER BY 1",
    )
    .await;
    let expected = expected();
    for r in per_workspace {
        assert_eq!(
            r[1],
            expected["workspaces"][&r[0]]["cost"].as_str().unwrap()
        );
    }
}

/// The `add` actions of every commit of a table's Delta log.
fn logged_adds(table_dir: &std::path::Path) -> Vec<Value> {
    let mut adds = Vec::new();
    for entry in std::fs::read_dir(table_dir.join("_delta_log")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() != Some("json".as_ref()) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let action: Value = serde_json::from_str(line).unwrap();
            if let Some(add) = action.get("add") {
                adds.push(add.clone());
            }
        }
    }
    adds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_statistics_never_hide_a_row_from_a_filter() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = inputs();
    ingest_files(&lake, &usage, &events).await;

    // The files carry statistics, so filters below can skip files by them.
    let adds = logged_adds(&dir.path().join("lake").join("usage"));
    assert!(!adds.is_empty(), "no usage files");
    let mut logged_rows = 0;
    for add in &adds {
        let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
        logged_rows += stats["numRecords"].as_i64().unwrap();
        for column in [
            "workspace_id",
            "record_id",
            "iccid",
            "start_time",
            "usage_date",
        ] {
            assert!(
                stats["minValues"].get(column).is_some(),
                "{column}: {stats}"
            );
            assert!(
                stats["maxValues"].get(column).is_some(),
                "{column}: {stats}"
            );
        }
    }
    let all = rows(&lake, "SELECT COUNT(*) FROM usage").await;
    assert_eq!(all[0][0], logged_rows.to_string());
    // The latest day as the log's statistics say (what the de-duplication window starts
    // from) is the latest day of the rows.
    let latest = rows(
        &lake,
        "SELECT CAST(MAX(usage_date) AS BIGINT) FROM raw_usage",
    )
    .await;
    let logged = lake
        .logged_max_day(simtally::lake::LakeTable::Usage, "usage_date")
        .await
        .unwrap();
    assert_eq!(
        logged.flatten().map(|d| d.to_string()),
        Some(latest[0][0].clone())
    );

    // Filters on every tenth row's values find exactly the rows that hold them.
    let all_rows = rows(
        &lake,
        "SELECT record_id, iccid, CAST(start_time AS VARCHAR), CAST(usage_date AS VARCHAR) \
         FROM usage",
    )
    .await;
    for (column, index, quote) in [
        ("record_id", 0, ""),
        ("iccid", 1, "'"),
        ("start_time", 2, "'"),
        ("usage_date", 3, "'"),
    ] {
        let picked: BTreeSet<&str> = all_rows
            .iter()
            .step_by(10)
            .map(|r| r[index].as_str())
            .collect();
        let expected = all_rows
            .iter()
            .filter(|r| picked.contains(r[index].as_str()))
            .count();
        let list: Vec<String> = picked
            .iter()
            .map(|v| format!("{quote}{v}{quote}"))
            .collect();
        let sql = format!(
            "SELECT COUNT(*) FROM usage WHERE {column} IN ({})",
            list.join(", ")
        );
        let found = rows(&lake, &sql).await;
        assert_eq!(found[0][0], expected.to_string(), "{column}");
    }
}

/// gzip and zstd files are read as the text they hold (told by their magic bytes, not their
/// names), and a UTF-8 byte order mark before the first line is not part of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_inputs_and_a_byte_order_mark_give_the_same_lake() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (usage, events) = inputs();
    let with_bom = |path: &std::path::Path| {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend(std::fs::read(path).unwrap());
        bytes
    };
    let gzip_path = dir.path().join("usage.ndjson.gz");
    let mut gzip = flate2::write::GzEncoder::new(
        std::fs::File::create(&gzip_path).unwrap(),
        flate2::Compression::fast(),
    );
    gzip.write_all(&with_bom(&usage[0])).unwrap();
    gzip.finish().unwrap();
    let zstd_path = dir.path().join("events.data");
    std::fs::write(
        &zstd_path,
        zstd::encode_all(&with_bom(&events[0])[..], 1).unwrap(),
    )
    .unwrap();

    let lake = local_lake(&dir);
    let summary = ingest_files(&lake, &[gzip_path], &[zstd_path]).await;
    assert_eq!(
        summary.usage.lines,
        expected()["input_lines"].as_u64().unwrap()
    );
    common::assert_sample_1(&lake).await;
}

/// The usage pass starts beside the events pass and decodes ahead of the ownership book.
/// When the events input breaks, the run fails with that error and stores no usage, however
/// much was read ahead: here more usage than is ever decoded ahead, so the reader waits on a
/// full queue until the run gives up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_events_input_fails_the_run_and_stores_no_usage() {
    use simtally::pipeline::{ingest, IngestOptions};
    use simtally::source::Input;
    let dir = tempfile::tempdir().unwrap();
    let (usage, _) = inputs();
    let text = std::fs::read_to_string(&usage[0]).unwrap();
    let line = text.lines().next().unwrap();
    let usage = dir.path().join("usage.ndjson");
    let copies = (64 << 20) / (line.len() + 1) + 1;
    std::fs::write(&usage, format!("{line}\n").repeat(copies)).unwrap();
    // zstd's magic number, then bytes that are no zstd frame.
    let events = dir.path().join("events.ndjson.zst");
    std::fs::write(
        &events,
        [0x28, 0xB5, 0x2F, 0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1],
    )
    .unwrap();

    let lake = local_lake(&dir);
    let options = IngestOptions {
        usage: vec![Input::File(usage)],
        events: vec![Input::File(events)],
        progress: false,
        threads: 2,
        ..IngestOptions::default()
    };
    // A guard against a hang, far above the run's time.
    let run = ingest(&lake, options, tokio_util::sync::CancellationToken::new());
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(600), run).await;
    let error = outcome.expect("the run ends").expect_err("the run fails");
    assert!(error.to_string().contains("events.ndjson.zst"), "{error}");
    assert_eq!(
        rows(&lake, "SELECT count(*) FROM usage").await,
        vec![vec!["0".to_string()]]
    );
}
