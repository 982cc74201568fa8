use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{KafkaError, Topics};

/// Both topics are keyed by ICCID, so one consumer owns a SIM's usage and its events only if
/// the topics have the same number of partitions. Returns that number, or says what differs.
pub async fn check_co_partitioned(brokers: &str, topics: &Topics) -> Result<i32, KafkaError> {
    let (brokers, topics) = (brokers.to_owned(), topics.clone());
    tokio::task::spawn_blocking(move || {
        let usage = partition_count(&brokers, &topics.usage)?;
        let events = partition_count(&brokers, &topics.events)?;
        if usage != events {
            return Err(KafkaError::NotCoPartitioned {
                usage_topic: topics.usage,
                usage_partitions: usage,
                events_topic: topics.events,
                events_partitions: events,
            });
        }
        Ok(usage)
    })
    .await
    .map_err(|e| KafkaError::Internal(format!("metadata thread: {e}")))?
}

/// Partitions of `topic`; an error if the topic does not exist.
fn partition_count(brokers: &str, topic: &str) -> Result<i32, KafkaError> {
    const WAIT_SECONDS: u64 = 15;
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Metadata requests must not create the topic they ask about.
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|cause| KafkaError::Client {
            brokers: brokers.to_owned(),
            cause,
        })?;
    let metadata = client
        .fetch_metadata(Some(topic), Duration::from_secs(WAIT_SECONDS))
        .map_err(|_| KafkaError::Unreachable {
            brokers: brokers.to_owned(),
            seconds: WAIT_SECONDS,
        })?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(KafkaError::Topic {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            detail: "does not exist (create it, or load data with `simtally produce`)".into(),
        }),
    }
}
