//! `produce` against a real Kafka-protocol broker. scripts/test.sh starts tansu and sets
//! SIMTALLY_TEST_BROKERS; set it to an Apache Kafka or Redpanda address to run it there.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::shared_fixture;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use simtally::source::kafka::{produce, ProduceOptions, Topics};
use simtally::source::Input;

fn brokers() -> String {
    std::env::var("SIMTALLY_TEST_BROKERS").expect(
        "SIMTALLY_TEST_BROKERS is not set: run scripts/test.sh (it starts a broker), \
         or point it at one",
    )
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Every message of `topic` from the start: (key, payload), in no particular order.
fn read_all(brokers: &str, topic: &str, expected: usize) -> Vec<(Option<String>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while out.len() < expected && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(RdKafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
        }
    }
    out
}

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
            count(&mut got.iter().map(|(_, p)| p.clone())),
            count(&mut lines.into_iter()),
            "{topic}: the payloads are the lines, each exactly once"
        );
        for (key, payload) in &got {
            if let Some(key) = key {
                let text = String::from_utf8_lossy(payload);
                assert!(
                    text.contains(&format!("\"{key}\"")),
                    "key {key} not in {text}"
                );
            }
        }
        assert!(got.iter().filter(|(k, _)| k.is_some()).count() * 10 > got.len() * 9);
    }
}
