//! A real Kafka-protocol broker for the tests: scripts/test.sh starts tansu and sets
//! SIMTALLY_TEST_BROKERS; set it to an Apache Kafka or Redpanda address to run them there.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Headers, Message};

pub fn brokers() -> String {
    std::env::var("SIMTALLY_TEST_BROKERS").expect(
        "SIMTALLY_TEST_BROKERS is not set: run scripts/test.sh (it starts a broker), \
         or point it at one",
    )
}

/// A name no other test run uses.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

/// A message as read back: key, payload, headers (name, value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadMessage {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

pub async fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(15))),
        )
        .await
        .unwrap();
    for result in results {
        result.unwrap();
    }
}

/// Every message of `topic` from the start, in no particular order; waits up to a minute
/// for `expected` of them.
pub fn read_all(brokers: &str, topic: &str, expected: usize) -> Vec<ReadMessage> {
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
            Some(Ok(m)) => out.push(ReadMessage {
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(RdKafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
        }
    }
    out
}
