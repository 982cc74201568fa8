//! `ingest --brokers --exit-at-end` against a real Kafka-protocol broker (scripts/test.sh
//! starts tansu and sets SIMTALLY_TEST_BROKERS; any Kafka or Redpanda address works).

mod common;

use std::path::PathBuf;

use common::{ingest_files, local_lake, rows, shared_fixture};
use simtally::lake::Lake;
use simtally::pipeline::{ingest, IngestOptions, KafkaIngest, RunSummary};
use simtally::source::kafka::{produce, ProduceOptions, Topics};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

fn brokers() -> String {
    std::env::var("SIMTALLY_TEST_BROKERS").expect(
        "SIMTALLY_TEST_BROKERS is not set: run scripts/test.sh (it starts a broker), \
         or point it at one",
    )
}

fn unique_topics() -> Topics {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("{}-{nanos}", std::process::id());
    Topics {
        usage: format!("usage-{tag}"),
        events: format!("events-{tag}"),
    }
}

fn sample(name: &str) -> PathBuf {
    shared_fixture(&format!("sample-1/{name}.ndjson"))
}

async fn produce_files(topics: &Topics, usage: &[PathBuf], events: &[PathBuf]) {
    produce(ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage: usage.iter().cloned().map(Input::File).collect(),
        events: events.iter().cloned().map(Input::File).collect(),
        partitions: 3,
    })
    .await
    .expect("produce succeeds");
}

async fn ingest_topics(lake: &Lake, topics: &Topics) -> RunSummary {
    ingest(
        lake,
        IngestOptions {
            usage: Vec::new(),
            events: Vec::new(),
            progress: false,
            threads: 2,
            kafka: Some(KafkaIngest {
                brokers: brokers(),
                topics: topics.clone(),
                group: "simtally-test".into(),
            }),
        },
        CancellationToken::new(),
    )
    .await
    .expect("ingest from Kafka succeeds")
}

/// What finance and the acceptance fixture look at: sums per Workspace and day, quarantine
/// by reason, dead letters by reason.
async fn totals(lake: &Lake) -> Vec<Vec<Vec<String>>> {
    let queries = [
        "SELECT workspace_id, usage_date, COUNT(*), SUM(volume_rx), SUM(volume_tx), \
         SUM(volume_total), SUM(cost) FROM usage GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT reason, COUNT(*), SUM(volume_total), SUM(cost) FROM quarantine \
         GROUP BY 1 ORDER BY 1",
        "SELECT reason, COUNT(*) FROM dead_letters GROUP BY 1 ORDER BY 1",
    ];
    let mut out = Vec::new();
    for sql in queries {
        out.push(rows(lake, sql).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_before_its_events_gives_the_file_result_exactly_once() {
    let topics = unique_topics();
    // Usage first, events after: the order that needs the events read before attribution.
    produce_files(&topics, &[sample("usage")], &[]).await;
    produce_files(&topics, &[], &[sample("events")]).await;

    let kafka_dir = tempfile::tempdir().unwrap();
    let kafka_lake = local_lake(&kafka_dir);
    let first = ingest_topics(&kafka_lake, &topics).await;
    assert!(first.usage.is_conserved() && first.events.is_conserved());

    let file_dir = tempfile::tempdir().unwrap();
    let file_lake = local_lake(&file_dir);
    ingest_files(&file_lake, &[sample("usage")], &[sample("events")]).await;
    let expected = totals(&file_lake).await;
    assert!(!expected[0].is_empty());
    assert_eq!(totals(&kafka_lake).await, expected);

    // Nothing new on the topics: nothing is read again and nothing is committed.
    let second = ingest_topics(&kafka_lake, &topics).await;
    assert_eq!(second.usage.lines, 0);
    assert_eq!(second.events.lines, 0);
    assert!(
        second.lake_versions.is_empty(),
        "{:?}",
        second.lake_versions
    );

    // A producer delivers every usage record a second time: all are duplicates, and no sum
    // moves. A malformed message has no record id to recognize it by, so each delivery is a
    // dead letter of its own, with its own offset.
    produce_files(&topics, &[sample("usage")], &[]).await;
    let third = ingest_topics(&kafka_lake, &topics).await;
    assert_eq!(third.usage.lines, first.usage.lines);
    assert_eq!(third.usage.records, 0);
    assert_eq!(third.usage.already_in_lake, first.usage.records);
    assert_eq!(third.usage.dead_letters, first.usage.dead_letters);
    let after = totals(&kafka_lake).await;
    assert_eq!(after[..2], expected[..2]);
    let doubled: Vec<Vec<String>> = expected[2]
        .iter()
        .map(|r| vec![r[0].clone(), (r[1].parse::<u64>().unwrap() * 2).to_string()])
        .collect();
    assert_eq!(after[2], doubled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_carry_topic_partition_and_offset() {
    let topics = unique_topics();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "not json\n{\"id\": 1}\n").unwrap();
    produce_files(&topics, &[bad], &[sample("events")]).await;

    let lake = local_lake(&dir);
    let summary = ingest_topics(&lake, &topics).await;
    assert_eq!(summary.usage.dead_letters, 2);
    let sources = rows(
        &lake,
        "SELECT source, reason FROM dead_letters WHERE payload IN (X'6e6f74206a736f6e', X'7b226964223a20317d') ORDER BY reason",
    )
    .await;
    assert_eq!(sources.len(), 2, "{sources:?}");
    for row in &sources {
        let parts: Vec<&str> = row[0].split('/').collect();
        assert_eq!(parts.len(), 3, "{}", row[0]);
        assert_eq!(parts[0], topics.usage);
        assert!(
            parts[1].parse::<i32>().is_ok() && parts[2].parse::<i64>().is_ok(),
            "{}",
            row[0]
        );
    }
}
