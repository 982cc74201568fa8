//! Reading a topic to its end (`ingest --exit-at-end`), every partition from the position the
//! lake recorded, as chunks of whole messages with their offsets. The end is where the broker
//! says a partition has nothing more, and at least the end offsets seen at start.
//!
//! librdkafka is only called from the thread that asks for chunks (the pipeline's reader
//! thread, or a blocking task), never from the async runtime.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaError;
use crate::source::{Chunk, ChunkSource, MessageKeys, SourceError};

/// Chunks are cut at about this many bytes, like file chunks.
const CHUNK_BYTES: usize = 1 << 20;
const METADATA_WAIT: Duration = Duration::from_secs(15);
/// How long the broker may send nothing while records are still due before the run fails.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// The Delta `txn` application id under which a partition's next offset is recorded.
pub fn resume_app_id(topic: &str, partition: i32) -> String {
    format!("simtally:kafka:{topic}:{partition}")
}

/// librdkafka reports every end of a partition as an error as well; reaching the end is
/// what this reader waits for, so only other errors are logged.
struct QuietAtEnd;

impl ClientContext for QuietAtEnd {
    fn error(&self, error: RdKafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for QuietAtEnd {}

/// One partition of the topic: where reading starts and ends, and the messages gathered for
/// the next chunk.
struct PartitionRead {
    partition: i32,
    /// Where this run started reading.
    start: i64,
    /// The next offset to deliver; where a later run resumes once this run commits.
    next: i64,
    /// The end offset (high watermark) seen at start: reading goes at least this far.
    end: i64,
    /// The consumer reported reaching the end of the partition after the last message.
    at_end: bool,
    data: Vec<u8>,
    messages: Vec<(u64, usize)>,
    keys: MessageKeys,
}

impl PartitionRead {
    /// Read through the end seen at start, and the broker said nothing more is there.
    /// (Both: some brokers' end offsets lag behind their logs, and the end-of-partition
    /// signal can come before a fetch from a later offset was made.)
    fn done(&self) -> bool {
        self.at_end && self.next >= self.end
    }

    fn take_chunk(&mut self) -> Option<Chunk> {
        if self.messages.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data);
        let messages = std::mem::take(&mut self.messages);
        let keys = std::mem::take(&mut self.keys);
        Some(Chunk::of_messages(data, messages, keys))
    }
}

pub struct TopicToEnd {
    consumer: BaseConsumer<QuietAtEnd>,
    topic: String,
    partitions: Vec<PartitionRead>,
}

impl TopicToEnd {
    /// Opens `topic` and plans the read: each partition (of `only`, if given) from
    /// `resume_from(partition)` (or its first offset) to its end. Blocks on the broker: call it off the async runtime.
    pub fn open(
        brokers: &str,
        group: &str,
        topic: &str,
        only: Option<&[i32]>,
        resume_from: &dyn Fn(i32) -> Option<i64>,
    ) -> Result<Self, KafkaError> {
        let client_error = |source| KafkaError::Client {
            brokers: brokers.to_owned(),
            source,
        };
        let consumer: BaseConsumer<QuietAtEnd> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            // Positions live in the lake, committed with the data; never in the group.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("allow.auto.create.topics", "false")
            .set("enable.partition.eof", "true")
            .create_with_context(QuietAtEnd)
            .map_err(client_error)?;
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_WAIT)
            .map_err(client_error)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .filter(|p| only.is_none_or(|only| only.contains(p)))
            .collect();
        if partitions.is_empty() {
            return Err(KafkaError::Topic {
                brokers: brokers.to_owned(),
                topic: topic.to_owned(),
                detail: "it does not exist (or has no partitions)".into(),
            });
        }
        let mut reads = Vec::with_capacity(partitions.len());
        let mut assignment = TopicPartitionList::new();
        for partition in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, METADATA_WAIT)
                .map_err(client_error)?;
            let next = resume_from(partition).map_or(low, |recorded| recorded.max(low));
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(client_error)?;
            reads.push(PartitionRead {
                partition,
                start: next,
                next,
                end: high,
                at_end: false,
                data: Vec::new(),
                messages: Vec::new(),
                keys: MessageKeys::default(),
            });
        }
        consumer.assign(&assignment).map_err(client_error)?;
        Ok(TopicToEnd {
            consumer,
            topic: topic.to_owned(),
            partitions: reads,
        })
    }

    /// Per partition: messages between where this read starts and the broker's end offset.
    pub fn lags(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .map(|p| (self.topic.clone(), p.partition, (p.end - p.start).max(0)))
            .collect()
    }

    /// Whether any partition has messages past where this read starts (the broker's end
    /// offset may lag its log, but it always passes the start once a later batch exists).
    pub fn has_pending(&self) -> bool {
        self.partitions.iter().any(|p| p.end > p.start)
    }

    fn error(&self, partition: i32, offset: i64, detail: String) -> SourceError {
        SourceError::Kafka {
            topic: self.topic.clone(),
            partition,
            offset,
            detail,
        }
    }

    fn index_of(&self, partition: i32) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.partition == partition)
    }

    /// A gathered chunk that is full, or of a partition that reached its end.
    fn ready_chunk(&mut self) -> Option<(usize, Chunk)> {
        self.partitions
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.done() || p.data.len() >= CHUNK_BYTES)
            .find_map(|(index, p)| p.take_chunk().map(|chunk| (index, chunk)))
    }

    /// Polls once; returns whether anything arrived.
    fn poll_once(&mut self) -> Result<bool, SourceError> {
        let Some(result) = self.consumer.poll(Duration::from_millis(500)) else {
            return Ok(false);
        };
        let message = match result {
            Ok(message) => message,
            Err(RdKafkaError::PartitionEOF(partition)) => {
                if let Some(index) = self.index_of(partition) {
                    self.partitions[index].at_end = true;
                }
                return Ok(true);
            }
            Err(e) => return Err(self.error(-1, -1, e.to_string())),
        };
        let (partition, offset) = (message.partition(), message.offset());
        let Some(index) = self.index_of(partition) else {
            return Ok(true);
        };
        let read = &mut self.partitions[index];
        read.at_end = false;
        if offset < read.next {
            return Ok(true);
        }
        read.data
            .extend_from_slice(message.payload().unwrap_or_default());
        read.messages.push((offset as u64, read.data.len()));
        read.keys.push(offset as u64, message.key());
        read.next = offset + 1;
        Ok(true)
    }
}

impl ChunkSource for TopicToEnd {
    fn prefixes(&self) -> Vec<String> {
        self.partitions
            .iter()
            .map(|p| format!("{}/{}/", self.topic, p.partition))
            .collect()
    }

    fn next_chunk(&mut self) -> Result<Option<(usize, Chunk)>, SourceError> {
        let mut last_progress = std::time::Instant::now();
        loop {
            if let Some(ready) = self.ready_chunk() {
                return Ok(Some(ready));
            }
            if self.partitions.iter().all(PartitionRead::done) {
                return Ok(None);
            }
            if self.poll_once()? {
                last_progress = std::time::Instant::now();
            } else if last_progress.elapsed() > STALL_LIMIT {
                let waiting = self.partitions.iter().find(|p| !p.done());
                let (partition, offset) = waiting.map_or((-1, -1), |p| (p.partition, p.next));
                return Err(self.error(
                    partition,
                    offset,
                    format!(
                        "no messages and no end of partition for {} s",
                        STALL_LIMIT.as_secs()
                    ),
                ));
            }
        }
    }

    /// Only partitions this run moved on: a run that read nothing commits nothing.
    fn resume_points(&self) -> Vec<(String, i64)> {
        self.partitions
            .iter()
            .filter(|p| p.next > p.start)
            .map(|p| (resume_app_id(&self.topic, p.partition), p.next))
            .collect()
    }
}
