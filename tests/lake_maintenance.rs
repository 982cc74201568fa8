//! `lake compact` and `lake vacuum`: fewer files, the same rows, positions and idempotency.

mod common;

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
    // Three ingests of a third of the usage each: three files per partition.
    let text = std::fs::read_to_string(shared_fixture("sample-1/usage.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let events = vec![shared_fixture("sample-1/events.ndjson")];
    let mut parts = Vec::new();
    for (i, part) in lines.chunks(lines.len().div_ceil(3)).enumerate() {
        let path = dir.path().join(format!("usage-{i}.ndjson"));
        std::fs::write(&path, part.join("\n")).unwrap();
        ingest_files(&lake, std::slice::from_ref(&path), &events).await;
        parts.push(path);
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
    let orphan = dir
        .path()
        .join("lake/usage/workspace_id=101/part-00000-orphan.zstd.parquet");
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
