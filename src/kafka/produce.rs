use std::borrow::Cow;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::Deserialize;

use super::{KafkaError, Topics};
use crate::source::Input;

/// What `simtally produce` loads.
#[derive(Clone, Debug)]
pub struct ProduceOptions {
    pub brokers: String,
    pub topics: Topics,
    pub usage: Vec<Input>,
    pub events: Vec<Input>,
    /// Partitions of each topic when it has to be created (both get the same number, so
    /// that they are co-partitioned by ICCID).
    pub partitions: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceSummary {
    pub usage_messages: u64,
    pub event_messages: u64,
}

/// Creates the topics if needed and sends every non-blank line of the inputs, keyed by its
/// ICCID (unkeyed if the line has none: it still goes, to end up as a dead letter).
pub async fn produce(options: ProduceOptions) -> Result<ProduceSummary, KafkaError> {
    ensure_topics(&options).await?;
    tokio::task::spawn_blocking(move || send_all(&options))
        .await
        .map_err(|e| KafkaError::Internal(format!("producer thread: {e}")))?
}

async fn ensure_topics(options: &ProduceOptions) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(&options.brokers)
        .create()
        .map_err(|source| client_error(&options.brokers, source))?;
    let topics = [&options.topics.usage, &options.topics.events];
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, options.partitions, TopicReplication::Fixed(1)))
        .collect();
    // Without a request timeout, an unreachable broker would make this wait forever.
    const WAIT_SECONDS: u64 = 15;
    let wait = Some(Duration::from_secs(WAIT_SECONDS));
    let admin_options = AdminOptions::new()
        .request_timeout(wait)
        .operation_timeout(wait);
    let results =
        admin
            .create_topics(&new, &admin_options)
            .await
            .map_err(|source| match source {
                RdKafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut) => {
                    KafkaError::Unreachable {
                        brokers: options.brokers.clone(),
                        seconds: WAIT_SECONDS,
                    }
                }
                source => client_error(&options.brokers, source),
            })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::Topic {
                    brokers: options.brokers.clone(),
                    topic,
                    detail: format!("cannot create it: {code}"),
                })
            }
        }
    }
    Ok(())
}

fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config
}

fn client_error(brokers: &str, cause: RdKafkaError) -> KafkaError {
    KafkaError::Client {
        brokers: brokers.to_owned(),
        cause,
    }
}

/// Counts delivery failures reported by librdkafka's callback.
#[derive(Default)]
struct Deliveries {
    failures: Mutex<(u64, Option<String>)>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            if let Ok(mut failures) = self.failures.lock() {
                failures.0 += 1;
                failures.1.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

fn send_all(options: &ProduceOptions) -> Result<ProduceSummary, KafkaError> {
    let producer: BaseProducer<Deliveries> = client_config(&options.brokers)
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create_with_context(Deliveries::default())
        .map_err(|source| client_error(&options.brokers, source))?;
    let mut summary = ProduceSummary::default();
    for input in &options.usage {
        summary.usage_messages += send_file(
            &producer,
            &options.brokers,
            input,
            &options.topics.usage,
            usage_key,
        )?;
    }
    for input in &options.events {
        summary.event_messages += send_file(
            &producer,
            &options.brokers,
            input,
            &options.topics.events,
            event_key,
        )?;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|source| client_error(&options.brokers, source))?;
    let sent = summary.usage_messages + summary.event_messages;
    check_deliveries(&producer, &options.brokers, sent)?;
    Ok(summary)
}

/// Sends `messages` ((key, payload)) to `topic` and waits until the broker has every one.
/// Idempotent: a retry inside librdkafka never writes a message twice.
pub async fn publish(
    brokers: &str,
    topic: &str,
    messages: Vec<(String, Vec<u8>)>,
) -> Result<(), KafkaError> {
    let messages = messages
        .into_iter()
        .map(|(key, payload)| Outgoing {
            key: Some(key.into_bytes()),
            payload,
            headers: Vec::new(),
        })
        .collect();
    publish_messages(brokers, topic, messages).await
}

/// A message to send: its key (if any), payload and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, Vec<u8>)>,
}

/// As [`publish`], for messages with any keys and with headers.
pub async fn publish_messages(
    brokers: &str,
    topic: &str,
    messages: Vec<Outgoing>,
) -> Result<(), KafkaError> {
    let (brokers, topic) = (brokers.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || send_and_wait(&brokers, &topic, &messages))
        .await
        .map_err(|e| KafkaError::Internal(format!("producer thread: {e}")))?
}

fn send_and_wait(brokers: &str, topic: &str, messages: &[Outgoing]) -> Result<(), KafkaError> {
    let producer: BaseProducer<Deliveries> = client_config(brokers)
        .set("enable.idempotence", "true")
        // A person waits on this: an unreachable broker fails in seconds (the outbox
        // publishes again later).
        .set("message.timeout.ms", "10000")
        .create_with_context(Deliveries::default())
        .map_err(|source| client_error(brokers, source))?;
    for message in messages {
        let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
        for (name, value) in &message.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_slice()),
            });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(message.payload.as_slice())
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_slice());
        }
        send_one(&producer, record).map_err(|e| client_error(brokers, e))?;
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|source| client_error(brokers, source))?;
    check_deliveries(&producer, brokers, messages.len() as u64)
}

/// Fails if librdkafka reported any message as not delivered.
fn check_deliveries(
    producer: &BaseProducer<Deliveries>,
    brokers: &str,
    sent: u64,
) -> Result<(), KafkaError> {
    let (failed, first) = producer
        .context()
        .failures
        .lock()
        .map(|f| f.clone())
        .map_err(|_| KafkaError::Internal("delivery counter poisoned".into()))?;
    if failed > 0 {
        return Err(KafkaError::Delivery {
            brokers: brokers.to_owned(),
            sent,
            failed,
            first: first.unwrap_or_default(),
        });
    }
    Ok(())
}

fn send_file(
    producer: &BaseProducer<Deliveries>,
    brokers: &str,
    input: &Input,
    topic: &str,
    key_of: fn(&[u8]) -> Option<String>,
) -> Result<u64, KafkaError> {
    let mut reader = input.open()?;
    let mut sent = 0;
    while let Some(chunk) = reader.next_chunk()? {
        for (_, line) in chunk.records() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let key = key_of(line);
            let mut record = BaseRecord::to(topic).payload(line);
            if let Some(key) = &key {
                record = record.key(key.as_str());
            }
            send_one(producer, record).map_err(|e| client_error(brokers, e))?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends one message, waiting while librdkafka's local queue is full.
fn send_one<K: rdkafka::message::ToBytes + ?Sized>(
    producer: &BaseProducer<Deliveries>,
    mut record: BaseRecord<'_, K, [u8]>,
) -> Result<(), RdKafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(50));
            }
            // Refused by the client (too large for the broker, an unknown partition): the
            // broker's or the user's to fix, with the client's reason.
            Err((error, _)) => return Err(error),
        }
    }
}

#[derive(Deserialize)]
struct UsageKey<'a> {
    #[serde(borrow)]
    sim: Option<SimKey<'a>>,
}

#[derive(Deserialize)]
struct SimKey<'a> {
    #[serde(borrow)]
    iccid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EventKey<'a> {
    #[serde(borrow)]
    iccid: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// The key of every directory event: one partition keeps them in order, which their rules
/// depend on (a role granted in a Workspace needs the Workspace first).
pub const DIRECTORY_KEY: &str = "directory";

/// The ICCID of a usage record (`sim.iccid`), if the line has one.
fn usage_key(line: &[u8]) -> Option<String> {
    let key: UsageKey = serde_json::from_slice(line).ok()?;
    key.sim?.iccid.map(Cow::into_owned)
}

/// The ICCID of a lifecycle event, [`DIRECTORY_KEY`] for a directory event, or none.
fn event_key(line: &[u8]) -> Option<String> {
    let key: EventKey = serde_json::from_slice(line).ok()?;
    let directory = key
        .kind
        .is_some_and(|k| crate::domain::DIRECTORY_EVENT_TYPES.contains(&k.as_ref()));
    match key.iccid {
        Some(iccid) => Some(iccid.into_owned()),
        None if directory => Some(DIRECTORY_KEY.to_owned()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_iccid_when_there_is_one() {
        let usage = br#"{"id": 1, "sim": {"iccid": "8988303000010001867"}, "x": [1]}"#;
        assert_eq!(usage_key(usage).as_deref(), Some("8988303000010001867"));
        let event = br#"{"event_id": "e", "iccid": "8988303000010001868"}"#;
        assert_eq!(event_key(event).as_deref(), Some("8988303000010001868"));
        let directory = br#"{"event_id": "d", "type": "role_granted", "workspace_id": 101}"#;
        assert_eq!(event_key(directory).as_deref(), Some(DIRECTORY_KEY));
        assert_eq!(usage_key(b"{not json"), None);
        assert_eq!(usage_key(br#"{"sim": 5}"#), None);
    }
}
