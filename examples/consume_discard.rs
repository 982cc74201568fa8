//! The practical limit for `scripts/bench-kafka.sh`: a plain rdkafka loop that reads every
//! partition of a topic from the start to its end and discards the messages.
//!
//!     cargo run --release --example consume_discard -- BROKERS TOPIC

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(brokers), Some(topic)) = (args.next(), args.next()) else {
        return Err("usage: consume_discard BROKERS TOPIC".into());
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "consume-discard")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(15))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    for partition in &partitions {
        assignment.add_partition_offset(&topic, *partition, Offset::Beginning)?;
    }
    let started = Instant::now();
    consumer.assign(&assignment)?;
    let (mut messages, mut bytes, mut at_end) = (0u64, 0u64, 0usize);
    let mut ended = vec![false; partitions.len()];
    while at_end < partitions.len() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                messages += 1;
                bytes += message.payload().map_or(0, |p| p.len() as u64);
                if let Some(i) = partitions.iter().position(|p| *p == message.partition()) {
                    if ended[i] {
                        ended[i] = false;
                        at_end -= 1;
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                if let Some(i) = partitions.iter().position(|p| *p == partition) {
                    if !ended[i] {
                        ended[i] = true;
                        at_end += 1;
                    }
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{messages} messages, {:.1} MiB in {seconds:.2} s: {:.0} messages/s",
        bytes as f64 / (1024.0 * 1024.0),
        messages as f64 / seconds
    );
    Ok(())
}
