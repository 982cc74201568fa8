//! kafka: the two topics simtally reads, usage and lifecycle events, both keyed by ICCID.
//! `consume` reads partitions into chunks to an end (a [`crate::source::ChunkSource`]),
//! with the broker workaround (`ResumeCheck`); `group` is a follower's consumer-group
//! membership; `topics` checks that the topics are co-partitioned; `produce` publishes
//! (NDJSON files, as producers in production would, the dead-letter topic, transfer
//! events). librdkafka is polled on blocking threads, never on the async runtime.

mod consume;
mod group;
mod produce;
mod topics;

pub use consume::{resume_app_id, KeptConsumers, ReadBudget, TopicToEnd};
pub use group::GroupMember;
pub use produce::{
    produce, publish, publish_messages, Outgoing, ProduceOptions, ProduceSummary, DIRECTORY_KEY,
};
pub use topics::check_co_partitioned;

/// Topic names; the defaults are the documented ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    pub usage: String,
    pub events: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            usage: "sim-usage".into(),
            events: "sim-events".into(),
        }
    }
}

/// Errors of the Kafka source. `Client` and `Topic` are usually the broker's (unreachable,
/// refusing a request) or the user's (wrong address); `Thread` the system's; `Internal` is a
/// bug in simtally.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka client for brokers '{brokers}': {cause}")]
    Client {
        brokers: String,
        cause: rdkafka::error::KafkaError,
    },
    #[error("no answer from the Kafka brokers '{brokers}' within {seconds} s: is the address right and the broker up?")]
    Unreachable { brokers: String, seconds: u64 },
    #[error("topic '{topic}' on brokers '{brokers}': {detail}")]
    Topic {
        brokers: String,
        topic: String,
        detail: String,
    },
    #[error(
        "{failed} of {sent} messages were not delivered to '{brokers}'; the first error: {first}"
    )]
    Delivery {
        brokers: String,
        sent: u64,
        failed: u64,
        first: String,
    },
    #[error(
        "topics '{usage_topic}' ({usage_partitions} partitions) and '{events_topic}' \
         ({events_partitions} partitions) must have the same number of partitions: both are \
         keyed by ICCID, and one consumer must read a SIM's usage and its events together"
    )]
    NotCoPartitioned {
        usage_topic: String,
        usage_partitions: i32,
        events_topic: String,
        events_partitions: i32,
    },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The system would not start a thread (out of memory or a process limit).
    #[error("cannot start the Kafka client's {name} thread: {cause}")]
    Thread {
        name: &'static str,
        cause: std::io::Error,
    },
    #[error("internal error (a bug in simtally): {0}")]
    Internal(String),
}
