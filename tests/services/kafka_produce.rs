//! `produce` against a real Kafka-protocol broker. scripts/test.sh starts tansu and sets
//! SIMTALLY_TEST_BROKERS; set it to an Apache Kafka or Redpanda address to run it there.

use crate::common;

use std::collections::BTreeMap;

use common::kafka::{brokers, read_all, unique};
use common::shared_fixture;
use simtally::kafka::{check_co_partitioned, produce, ProduceOptions, Topics};
use simtally::source::Input;

fn non_blank_lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_arrives_once_keyed_by_its_iccid() {
    let brokers = brokers();
    let topics = Topics {
        usage: unique("usage"),
        events: unique("events"),
    };
    let usage_file = shared_fixture("sample-1/usage.ndjson");
    let events_file = shared_fixture("sample-1/events.ndjson");
    let summary = produce(ProduceOptions {
        brokers: brokers.clone(),
        topics: topics.clone(),
        usage: vec![Input::File(usage_file.clone())],
        events: vec![Input::File(events_file.clone())],
        partitions: 3,
    })
    .await
    .expect("produce succeeds");

    for (topic, file, sent) in [
        (&topics.usage, &usage_file, summary.usage_messages),
        (&topics.events, &events_file, summary.event_messages),
    ] {
        let lines = non_blank_lines(file);
        assert_eq!(sent as usize, lines.len(), "{topic}: one message per line");
        let got = read_all(&brokers, topic, lines.len());
        let count = |items: &mut dyn Iterator<Item = Vec<u8>>| {
            let mut counts = BTreeMap::new();
            for item in items {
                *counts.entry(item).or_insert(0) += 1;
            }
            counts
        };
        assert_eq!(
            count(&mut got.iter().map(|m| m.payload.clone())),
            count(&mut lines.into_iter()),
            "{topic}: the payloads are the lines, each exactly once"
        );
        for message in &got {
            if let Some(key) = &message.key {
                let key = String::from_utf8_lossy(key);
                let text = String::from_utf8_lossy(&message.payload);
                assert!(
                    text.contains(&format!("\"{key}\"")),
                    "key {key} not in {text}"
                );
            }
        }
        assert!(got.iter().filter(|m| m.key.is_some()).count() * 10 > got.len() * 9);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_different_partition_counts_are_refused() {
    let brokers = brokers();
    let load = |usage: String, events: String, partitions: i32| ProduceOptions {
        brokers: brokers.clone(),
        topics: Topics { usage, events },
        usage: vec![],
        events: vec![Input::File(shared_fixture("sample-1/events.ndjson"))],
        partitions,
    };
    let (usage, events) = (unique("usage"), unique("events"));
    produce(load(usage.clone(), events.clone(), 3))
        .await
        .unwrap();
    let same = Topics {
        usage: usage.clone(),
        events: events.clone(),
    };
    assert_eq!(check_co_partitioned(&brokers, &same).await.unwrap(), 3);

    let other_events = unique("events");
    produce(load(unique("usage"), other_events.clone(), 2))
        .await
        .unwrap();
    let mixed = Topics {
        usage: usage.clone(),
        events: other_events,
    };
    let err = check_co_partitioned(&brokers, &mixed).await.unwrap_err();
    assert!(err.to_string().contains("(3 partitions)"), "{err}");
    assert!(err.to_string().contains("(2 partitions)"), "{err}");

    let missing = Topics {
        usage,
        events: unique("never-created"),
    };
    let err = check_co_partitioned(&brokers, &missing).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
