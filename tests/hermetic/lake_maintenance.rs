//! `lake compact`, `lake vacuum`, `lake maintain` and `lake migrate`: fewer files, rows in
//! their clustered order, the same rows, positions and idempotency; a lake in the older
//! layout refused until migrated in place.

use crate::common;

use common::{ingest_files, local_lake, rows, shared_fixture};
use deltalake::kernel::Transaction;
use simtally::lake::LakeTable;

const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM usage) AS u, \
     (SELECT SUM(cost) FROM usage) AS c, (SELECT COUNT(*) FROM quarantine) AS q, \
     (SELECT COUNT(*) FROM dead_letters) AS d, (SELECT COUNT(*) FROM sim_events) AS e";

fn parquet_files(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            count += parquet_files(&path);
        } else if path.extension() == Some("parquet".as_ref()) {
            count += 1;
        }
    }
    count
}

fn any_parquet_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(dir).unwrap().find_map(|entry| {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => any_parquet_file(&path),
            false => (path.extension() == Some("parquet".as_ref())).then_some(path),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_keep_every_row_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    // Three ingests of a third of the usage each: files of three ingests per table.
    let (parts, events) = three_ingests_of_sample(&dir);
    for part in &parts {
        ingest_files(&lake, std::slice::from_ref(part), &events).await;
    }
    // A recorded position (as a Kafka ingest leaves) must survive compaction.
    let appender = lake.appender(LakeTable::Usage).await.unwrap();
    appender
        .commit(vec![Transaction::new("simtally:test", 42)])
        .await
        .unwrap();
    let before = rows(&lake, TOTALS).await;
    let files_before = parquet_files(&dir.path().join("lake"));

    let compacted = lake.compact().await.unwrap();
    let usage = compacted.iter().find(|t| t.table == "usage").unwrap();
    assert!(
        usage.files_removed > usage.files_added && usage.files_added > 0,
        "{compacted:?}"
    );
    assert_eq!(rows(&lake, TOTALS).await, before);
    let recorded = lake
        .resume_points(LakeTable::Usage, &["simtally:test".to_string()])
        .await
        .unwrap();
    assert_eq!(recorded.get("simtally:test"), Some(&42));

    // The replaced files are still on disk until vacuumed.
    assert_eq!(
        parquet_files(&dir.path().join("lake")),
        files_before
            + compacted
                .iter()
                .map(|t| t.files_added as usize)
                .sum::<usize>()
    );
    // A file no commit names, as a run killed before its commit leaves behind.
    let orphan = dir.path().join("lake/usage/part-00000-orphan.zstd.parquet");
    let data_file = any_parquet_file(&dir.path().join("lake/usage")).unwrap();
    std::fs::copy(data_file, &orphan).unwrap();
    let dry = lake.vacuum(std::time::Duration::ZERO, true).await.unwrap();
    let removed: u64 = compacted.iter().map(|t| t.files_removed).sum::<u64>() + 1;
    assert_eq!(dry.iter().map(|t| t.files_removed).sum::<u64>(), removed);
    lake.vacuum(std::time::Duration::ZERO, false).await.unwrap();
    assert!(!orphan.exists(), "the unreferenced file is vacuumed");
    assert_eq!(
        parquet_files(&dir.path().join("lake")) as u64,
        files_before as u64 + 1 + compacted.iter().map(|t| t.files_added).sum::<u64>() - removed
    );
    assert_eq!(rows(&lake, TOTALS).await, before);

    // Re-ingesting after all that still adds nothing.
    for part in &parts {
        let again = ingest_files(&lake, std::slice::from_ref(part), &events).await;
        assert_eq!(again.usage.records, 0);
    }
    assert_eq!(rows(&lake, TOTALS).await, before);
}

/// `usage`'s rows in file order, per file, as (workspace_id, usage_date, iccid).
fn clustered_keys(table_dir: &std::path::Path) -> Vec<Vec<(i64, i32, String)>> {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{Date32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(table_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() != Some("parquet".as_ref()) {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut keys = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let workspaces: &Int64Array = batch
                .column_by_name("workspace_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let days = batch.column_by_name("usage_date").unwrap();
            let days = days.as_primitive::<Date32Type>();
            let iccids = batch.column_by_name("iccid").unwrap().as_string::<i32>();
            for i in 0..batch.num_rows() {
                keys.push((
                    workspaces.value(i),
                    days.value(i),
                    iccids.value(i).to_owned(),
                ));
            }
        }
        files.push(keys);
    }
    files
}

fn three_ingests_of_sample(
    dir: &tempfile::TempDir,
) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    let text = std::fs::read_to_string(shared_fixture("sample-1/usage.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let events = vec![shared_fixture("sample-1/events.ndjson")];
    let mut parts = Vec::new();
    for (i, part) in lines.chunks(lines.len().div_ceil(3)).enumerate() {
        let path = dir.path().join(format!("usage-{i}.ndjson"));
        std::fs::write(&path, part.join("\n")).unwrap();
        parts.push(path);
    }
    (parts, events)
}

/// An ingest writes each row group in Workspace, day and ICCID order; `lake maintain` merges
/// the small files of several ingests into one in that order, checkpoints, and vacuums.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_clustered_by_workspace_day_and_iccid_within_and_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (parts, events) = three_ingests_of_sample(&dir);
    for part in &parts {
        ingest_files(&lake, std::slice::from_ref(part), &events).await;
    }
    let usage_dir = dir.path().join("lake/usage");
    let before = rows(&lake, TOTALS).await;
    let files = clustered_keys(&usage_dir);
    // Not partitioned: each ingest added files by size, however many Workspaces it touched.
    assert!(files.len() <= 3 * 2, "{} files", files.len());
    for keys in &files {
        assert!(keys.windows(2).all(|w| w[0] <= w[1]), "a file out of order");
    }

    let done = lake.maintain(std::time::Duration::ZERO).await.unwrap();
    let usage = done.compacted.iter().find(|t| t.table == "usage").unwrap();
    assert_eq!(
        (usage.files_removed, usage.files_added),
        (files.len() as u64, 1)
    );
    assert!(
        done.checkpointed.contains(&"usage"),
        "{:?}",
        done.checkpointed
    );
    let after = clustered_keys(&usage_dir);
    assert_eq!(after.len(), 1, "vacuum left the merged files");
    let mut expected: Vec<_> = files.concat();
    expected.sort();
    assert_eq!(after[0], expected);
    assert_eq!(rows(&lake, TOTALS).await, before);
    // Nothing small left to merge: a second run changes nothing.
    let again = lake.compact().await.unwrap();
    assert!(
        again
            .iter()
            .all(|t| t.table != "usage" || t.files_added == 0),
        "{again:?}"
    );
}

/// A lake whose `usage` an older simtally wrote partitioned by Workspace is refused by
/// writers with what to do, and `lake migrate` rewrites it in place with the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_in_the_older_layout_is_refused_until_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (parts, events) = three_ingests_of_sample(&dir);
    for part in &parts {
        ingest_files(&lake, std::slice::from_ref(part), &events).await;
    }
    let before = rows(&lake, TOTALS).await;
    // The same rows as the older layout had them: `usage` partitioned by `workspace_id`.
    let stored = lake
        .select(LakeTable::Usage, "SELECT * FROM t")
        .await
        .unwrap();
    let usage_dir = dir.path().join("lake/usage");
    std::fs::remove_dir_all(&usage_dir).unwrap();
    std::fs::create_dir_all(&usage_dir).unwrap();
    let url = url::Url::from_directory_path(&usage_dir).unwrap();
    let table = deltalake::DeltaTableBuilder::from_url(url)
        .unwrap()
        .build()
        .unwrap();
    table
        .write(stored)
        .with_partition_columns(["workspace_id"])
        .await
        .unwrap();
    assert_eq!(
        rows(&lake, TOTALS).await,
        before,
        "readers read either layout"
    );

    let refused = simtally::pipeline::ingest(
        &lake,
        simtally::pipeline::IngestOptions {
            usage: vec![simtally::source::Input::File(parts[0].clone())],
            progress: false,
            ..Default::default()
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(refused.contains("simtally lake migrate"), "{refused}");

    let migrated = lake.migrate().await.unwrap();
    assert_eq!(migrated.len(), 1, "{migrated:?}");
    assert_eq!(migrated[0].table, "usage");
    assert_eq!(rows(&lake, TOTALS).await, before);
    assert!(
        lake.migrate().await.unwrap().is_empty(),
        "a second migration is a no-op"
    );
    // Writers work again, and nothing is stored twice.
    for part in &parts {
        let again = ingest_files(&lake, std::slice::from_ref(part), &events).await;
        assert_eq!(again.usage.records, 0);
    }
    assert_eq!(rows(&lake, TOTALS).await, before);
}

/// A one-Workspace query reads a fraction of `usage`: its rows are in Workspace order within
/// each row group, so row-group statistics skip whole row groups (an ingest's last rows are
/// cut into several) and the page index skips the pages of other Workspaces in the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_workspace_query_skips_the_pages_of_other_workspaces() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let generated = simtally::generate::generate(&simtally::generate::GenerateOptions {
        seed: 3,
        sims: 2_000,
        records: 40_000,
        days: 3,
        start: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        workspaces: Some(40),
        out: dir.path().join("data"),
        usage_by_day: false,
        zstd: false,
    })
    .unwrap();
    ingest_files(&lake, &[generated.usage], &[generated.events]).await;
    let stored: f64 = rows(&lake, "SELECT COUNT(*) FROM usage").await[0][0]
        .parse()
        .unwrap();
    let plan = rows(
        &lake,
        "EXPLAIN ANALYZE SELECT COUNT(*) FROM usage WHERE workspace_id = 1020",
    )
    .await
    .concat()
    .join("\n");
    // `page_index_rows_pruned=18.73 K total → 2.34 K matched`: the rows of the row groups
    // left after their statistics, and of those the rows in pages that may match. The first
    // scan is the rows.
    let pruned = plan
        .split("page_index_rows_pruned=")
        .nth(1)
        .unwrap_or_else(|| panic!("no page index pruning in\n{plan}"));
    let number = |text: &str| -> f64 {
        let text = text.trim();
        let (value, unit) = text.split_once(' ').unwrap_or((text, ""));
        value.parse::<f64>().unwrap() * if unit.starts_with('K') { 1000.0 } else { 1.0 }
    };
    let (total, rest) = pruned.split_once("total").unwrap();
    let matched = rest
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .split_once("matched")
        .unwrap()
        .0;
    let (total, matched) = (number(total), number(matched));
    assert!(
        stored > 30_000.0 && matched < total && matched <= stored / 3.0,
        "{stored} rows stored, {total} in the row groups left, {matched} read:\n{plan}"
    );
}
