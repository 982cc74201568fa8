//! Membership of a consumer group: which partitions this instance owns. Several instances in
//! one group share the partitions of both topics, and take over each other's on rebalance.
//!
//! The member never reads messages itself (its partitions are paused as soon as they are
//! assigned): a pass reads the owned partitions from the positions recorded in the lake, and
//! the Delta commit that records the new positions is what makes the work count. If two
//! instances briefly both believe they own a partition, the second commit for it conflicts
//! and is dropped (see `pipeline::follow`).
//!
//! librdkafka is driven from one blocking thread, never from the async runtime.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

use super::{KafkaError, Topics};

/// The partitions assigned to this member, per topic.
#[derive(Clone, Debug, Default)]
struct Assigned {
    usage: BTreeSet<i32>,
    events: BTreeSet<i32>,
    /// Counts assignments: the same partitions assigned again after a rebalance (when
    /// another member may have written them) are a new generation.
    generation: u64,
}

struct Membership {
    topics: Topics,
    assigned: Arc<Mutex<Assigned>>,
}

impl ClientContext for Membership {}

impl ConsumerContext for Membership {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut assigned) = self.assigned.lock() else {
            return;
        };
        match rebalance {
            Rebalance::Assign(list) => {
                *assigned = Assigned {
                    generation: assigned.generation + 1,
                    ..Assigned::default()
                };
                for element in list.elements() {
                    let set = if element.topic() == self.topics.usage {
                        &mut assigned.usage
                    } else {
                        &mut assigned.events
                    };
                    set.insert(element.partition());
                }
                // Messages are read by the passes, from the lake's positions, not here.
                if let Err(e) = consumer.pause(list) {
                    tracing::warn!("pausing the group member's partitions: {e}");
                }
                tracing::info!(usage = ?assigned.usage, events = ?assigned.events, "partitions assigned");
            }
            Rebalance::Revoke(_) => {
                *assigned = Assigned {
                    generation: assigned.generation + 1,
                    ..Assigned::default()
                };
                tracing::info!("partitions revoked");
            }
            Rebalance::Error(e) => tracing::warn!("rebalance: {e}"),
        }
    }
}

/// This instance's place in the group, kept alive by a thread until `leave`.
pub struct GroupMember {
    assigned: Arc<Mutex<Assigned>>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl GroupMember {
    /// Joins `group` on both topics. The range assignor gives co-partitioned topics' equal
    /// partition numbers to the same member, so a SIM's usage and events stay together.
    pub fn join(brokers: &str, group: &str, topics: &Topics) -> Result<Self, KafkaError> {
        let assigned = Arc::new(Mutex::new(Assigned::default()));
        let context = Membership {
            topics: topics.clone(),
            assigned: assigned.clone(),
        };
        let consumer: BaseConsumer<Membership> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("partition.assignment.strategy", "range")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "10000")
            .create_with_context(context)
            .map_err(|cause| KafkaError::Client {
                brokers: brokers.to_owned(),
                cause,
            })?;
        consumer
            .subscribe(&[topics.usage.as_str(), topics.events.as_str()])
            .map_err(|cause| KafkaError::Client {
                brokers: brokers.to_owned(),
                cause,
            })?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kafka-group".into())
            .spawn(move || {
                // Polling serves the group protocol (rebalances); the partitions are paused.
                while !stopped.is_cancelled() {
                    if let Some(Err(e)) = consumer.poll(Duration::from_millis(200)) {
                        tracing::warn!("group member: {e}");
                    }
                }
                // Dropping the consumer closes it, which leaves the group at once.
                drop(consumer);
            })
            .map_err(|cause| KafkaError::Thread {
                name: "group",
                cause,
            })?;
        Ok(GroupMember {
            assigned,
            stop,
            thread: Some(thread),
        })
    }

    /// The partition numbers this member owns in both topics (usage and events must agree,
    /// or a pass would attribute usage without its events), and the assignment's generation
    /// (it changes with every rebalance).
    pub fn owned(&self) -> (Vec<i32>, u64) {
        let Ok(assigned) = self.assigned.lock() else {
            return (Vec::new(), 0);
        };
        let owned = assigned
            .usage
            .intersection(&assigned.events)
            .copied()
            .collect();
        (owned, assigned.generation)
    }

    /// Leaves the group (others take the partitions over at once). Blocks: call it off the
    /// async runtime.
    pub fn leave(mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
