//! `dead-letters replay`: letters offered again under their original coordinates.

use crate::common;

use common::{ingest_files, local_lake, rows, shared_fixture};
use simtally::domain::UtcMillis;
use simtally::domain::{Reason, Rejection};
use simtally::lake::LakeTable;
use simtally::pipeline::{replay_dead_letters, IngestOptions};
use simtally::tables::dead_letters::{DeadLetter, DeadLetterRows};
use tokio_util::sync::CancellationToken;

const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM usage) AS u, \
     (SELECT SUM(cost) FROM usage) AS c, (SELECT COUNT(*) FROM quarantine) AS q, \
     (SELECT COUNT(*) FROM dead_letters) AS d";

fn options() -> IngestOptions {
    IngestOptions {
        usage: Vec::new(),
        events: Vec::new(),
        progress: false,
        threads: 2,
        ..IngestOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_letter_accepted_after_a_fix_is_attributed_once_under_its_first_source() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let usage = shared_fixture("sample-1/usage.ndjson");
    ingest_files(
        &lake,
        std::slice::from_ref(&usage),
        &[shared_fixture("sample-1/events.ndjson")],
    )
    .await;

    // What an older, buggier simtally might have left: a valid record as a dead letter.
    let first_line = std::fs::read_to_string(&usage).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    record["id"] = 9_000_000_001u64.into();
    let mut letters = DeadLetterRows::new(UtcMillis::from_millis(0));
    letters.append(&DeadLetter {
        source: "/old/usage.ndjson:77".into(),
        rejection: Rejection::new(Reason::NotJson, "rejected by an older version".into()),
        payload: record.to_string().into_bytes(),
        key: None,
        input: simtally::tables::dead_letters::LetterInput::Usage,
    });
    let mut appender = lake.appender(LakeTable::DeadLetters).await.unwrap();
    appender.write(letters.finish()).await.unwrap();
    appender.commit(Vec::new()).await.unwrap();
    let before = rows(&lake, TOTALS).await;

    let replayed = replay_dead_letters(&lake, &options(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(replayed.usage.records, 1);
    assert!(replayed.usage.is_conserved());
    let found = rows(
        &lake,
        "SELECT source, cost FROM usage WHERE record_id = 9000000001",
    )
    .await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0][0], "/old/usage.ndjson:77");
    // The letters that fail again are the ones already in the lake: none is added.
    let after = rows(&lake, TOTALS).await;
    assert_eq!(after[0][3], before[0][3]);
    assert_ne!(after[0][0], before[0][0]);

    let again = replay_dead_letters(&lake, &options(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.usage.records, 0);
    assert_eq!(again.usage.already_in_lake, 1);
    assert_eq!(rows(&lake, TOTALS).await, after);
}
