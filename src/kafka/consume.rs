//! Reading a topic to its end (`ingest --exit-at-end`), every partition from the position the
//! lake recorded, as chunks of whole messages with their offsets. The end is where the broker
//! says a partition has nothing more, and at least the end offsets seen at start.
//!
//! librdkafka is only called from the thread that asks for chunks (the pipeline's reader
//! thread, or a blocking task), never from the async runtime.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
/// How long [`TopicToEnd::probe_pending`] waits for a message or the end of every partition.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The Delta `txn` application id under which a partition's next offset is recorded.
pub fn resume_app_id(topic: &str, partition: i32) -> String {
    format!("{}{topic}:{partition}", crate::lake::KAFKA_APP_ID_PREFIX)
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

type TopicConsumer = BaseConsumer<QuietAtEnd>;

/// Consumers kept across the reads of a run (a follower's passes, the passes of
/// `--exit-at-end`), one per topic: a read shares its topic's consumer with this keeper,
/// and the next read of the topic takes it up again, reassigned, instead of connecting to
/// the brokers anew. A read still alive (its reader thread not done) makes the next read
/// of its topic connect a consumer of its own, which is kept from then on.
#[derive(Clone, Default)]
pub struct KeptConsumers(Arc<Mutex<HashMap<String, Arc<TopicConsumer>>>>);

impl KeptConsumers {
    /// The kept consumer of `topic` if no read holds it, else a new one from `create`.
    fn take(
        &self,
        topic: &str,
        create: impl FnOnce() -> Result<TopicConsumer, KafkaError>,
    ) -> Result<Arc<TopicConsumer>, KafkaError> {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(consumer) = kept.get(topic).filter(|c| Arc::strong_count(c) == 1) {
            return Ok(consumer.clone());
        }
        let consumer = Arc::new(create()?);
        kept.insert(topic.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Closes the kept consumers (those no read holds any more; a read closes its own when
    /// it is dropped). Blocks until librdkafka has closed them: call it off the async
    /// runtime, before the run leaves its consumer group.
    pub fn close(self) {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        drop(kept);
    }
}

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
    /// Reading this partition is done once the broker said it had nothing more after `end`
    /// was passed, even if more arrived since (see [`TopicToEnd::ending_at_start`]).
    stop_at_end: bool,
    /// The broker said so at least once since `end` was passed.
    passed_end: bool,
    /// A message produced after the read started arrived past `end`: the read of this
    /// partition is done there, and that message is the next pass's.
    newer_seen: bool,
    /// Checks that the broker resumed where asked (see [`ResumeCheck`]).
    resume: ResumeCheck,
    data: Vec<u8>,
    messages: Vec<(u64, usize)>,
    keys: MessageKeys,
}

/// Kafka answers a fetch from an offset inside a record batch with that whole batch, and the
/// client skips what lies before the offset. Some brokers (tansu 0.6) answer with the *next*
/// batch instead, silently dropping the rest of the one asked for (or nothing at all, and no
/// end-of-partition either, if that was the last batch); a pass that stopped mid-batch would
/// then lose messages. So the first message after a resume must not lie past the resume
/// point, and silence must end in either a message or the end of the partition: if not, the
/// read seeks back further (doubling the distance, down to the partition's first offset)
/// until a batch that covers the resume point arrives.
#[derive(Debug)]
struct ResumeCheck {
    /// The partition's first offset: no message can be missing before it.
    low: i64,
    /// How far before the resume point the last seek went (0: not yet).
    lookback: i64,
    /// A message at or before the resume point arrived (or nothing can lie before it).
    confirmed: bool,
}

/// What to do with the first messages read after a resume.
#[derive(Debug, PartialEq, Eq)]
enum ResumeStep {
    /// The read is where it should be: take the message (if not before the resume point).
    Take,
    /// The broker skipped past the resume point: drop the message, seek back to this offset.
    SeekBack(i64),
}

impl ResumeCheck {
    const FIRST_LOOKBACK: i64 = 1024;

    fn new(low: i64, resume: i64) -> Self {
        ResumeCheck {
            low,
            lookback: 0,
            confirmed: resume <= low,
        }
    }

    /// A message at `offset` arrived for a read that resumes at `resume`.
    fn step(&mut self, resume: i64, offset: i64) -> ResumeStep {
        if self.confirmed || offset <= resume {
            self.confirmed = true;
            return ResumeStep::Take;
        }
        match self.further_back(resume) {
            Some(earlier) => ResumeStep::SeekBack(earlier),
            None => {
                // Read from the very first offset and still past the resume point: a real
                // gap (compaction, transaction markers), not a skipped batch.
                self.confirmed = true;
                ResumeStep::Take
            }
        }
    }

    /// Nothing arrived for a while, not even the end of the partition: where to seek back
    /// to, if anywhere.
    fn silent(&mut self, resume: i64) -> Option<i64> {
        if self.confirmed {
            return None;
        }
        self.further_back(resume)
    }

    fn further_back(&mut self, resume: i64) -> Option<i64> {
        if resume - self.lookback <= self.low {
            return None;
        }
        self.lookback = (self.lookback * 2).max(Self::FIRST_LOOKBACK);
        Some((resume - self.lookback).max(self.low))
    }
}

impl PartitionRead {
    /// Read through the end seen at start, and the broker said nothing more is there.
    /// (Both: some brokers' end offsets lag behind their logs, and the end-of-partition
    /// signal can come before a fetch from a later offset was made.)
    fn done(&self) -> bool {
        let past_end = self.next >= self.end;
        (self.at_end && past_end)
            || (self.stop_at_end && ((self.passed_end && past_end) || self.newer_seen))
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
    consumer: Arc<TopicConsumer>,
    topic: String,
    partitions: Vec<PartitionRead>,
    /// How much one read may take before it stops where it is (`None`: no limit).
    budget: Option<ReadBudget>,
    taken: ReadBudget,
    stopped_short: Arc<AtomicBool>,
    /// When a read that ends at start (see [`TopicToEnd::ending_at_start`]) started (Unix
    /// milliseconds).
    started_ms: Option<i64>,
}

/// A limit on one read of a topic: it stops after this many messages or bytes, and the
/// next read goes on from there. Keeps a pass over a large backlog from holding everything
/// until one commit at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadBudget {
    pub messages: u64,
    pub bytes: u64,
}

impl ReadBudget {
    fn exhausted_by(&self, taken: &ReadBudget) -> bool {
        taken.messages >= self.messages || taken.bytes >= self.bytes
    }
}

impl TopicToEnd {
    /// Opens `topic` and plans the read: each partition (of `only`, if given) from
    /// `resume_from(partition)` (or its first offset) to its end, on the consumer `kept`
    /// holds for the topic if no read holds it now. Blocks on the broker: call it off the
    /// async runtime.
    pub fn open(
        brokers: &str,
        group: &str,
        topic: &str,
        only: Option<&[i32]>,
        resume_from: &dyn Fn(i32) -> Option<i64>,
        kept: &KeptConsumers,
    ) -> Result<Self, KafkaError> {
        let client_error = |cause| KafkaError::Client {
            brokers: brokers.to_owned(),
            cause,
        };
        let consumer = kept.take(topic, || {
            ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .set("group.id", group)
                // Positions live in the lake, committed with the data; never in the group.
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("allow.auto.create.topics", "false")
                .set("enable.partition.eof", "true")
                .create_with_context(QuietAtEnd)
                .map_err(client_error)
        })?;
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
                stop_at_end: false,
                passed_end: false,
                newer_seen: false,
                resume: ResumeCheck::new(low, next),
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
            budget: None,
            taken: ReadBudget::default(),
            stopped_short: Arc::default(),
            started_ms: None,
        })
    }

    /// Stops this read after `budget` (see [`ReadBudget`]).
    pub fn with_budget(mut self, budget: ReadBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Ends each partition's read once it is past the end offset seen at start and the
    /// broker has said it had nothing more, or at the first message past that offset produced
    /// after the read started (by its Kafka timestamp), not at the first moment the broker
    /// says so of every partition at once: for a follower, whose topics never stop growing
    /// (with a producer writing to every partition, that moment may not come for minutes;
    /// some brokers, tansu among them, rarely say "end" while a producer writes). Everything
    /// produced before the read started is read; what arrives later is the next pass's.
    pub fn ending_at_start(mut self) -> Self {
        for read in &mut self.partitions {
            read.stop_at_end = true;
        }
        self.started_ms = Some(chrono::Utc::now().timestamp_millis());
        self
    }

    /// A flag that turns true when this read stops because its budget ran out (rather than
    /// at the end of every partition): then there is more to read at once. Keep it before
    /// handing the read over.
    pub fn stopped_short(&self) -> Arc<AtomicBool> {
        self.stopped_short.clone()
    }

    fn spent(&self) -> bool {
        self.budget.is_some_and(|b| b.exhausted_by(&self.taken))
    }

    /// Per partition: messages between where this read starts and the broker's end offset.
    pub fn lags(&self) -> Vec<(String, i32, i64)> {
        self.partitions
            .iter()
            .map(|p| (self.topic.clone(), p.partition, (p.end - p.start).max(0)))
            .collect()
    }

    /// Whether anything waits to be read: polls until a message is gathered (it stays for
    /// the read) or every partition reports its end. Not by end offsets: some brokers
    /// (tansu 0.6) report them behind their logs, which would leave the last batch unread
    /// until another arrives. Blocks on the broker: call it off the async runtime.
    pub fn probe_pending(&mut self) -> Result<bool, SourceError> {
        let deadline = std::time::Instant::now() + PROBE_LIMIT;
        loop {
            if self.partitions.iter().any(|p| !p.messages.is_empty()) {
                return Ok(true);
            }
            if self.partitions.iter().all(|p| p.at_end) {
                return Ok(false);
            }
            // No answer either way: let a pass find out.
            if std::time::Instant::now() >= deadline {
                return Ok(true);
            }
            if !self.poll_once()? {
                self.seek_back_where_silent()?;
            }
        }
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
        let spent = self.spent();
        self.partitions
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.done() || p.data.len() >= CHUNK_BYTES || spent)
            .find_map(|(index, p)| p.take_chunk().map(|chunk| (index, chunk)))
    }

    fn seek(&self, partition: i32, offset: i64) -> Result<(), SourceError> {
        self.consumer
            .seek(
                &self.topic,
                partition,
                Offset::Offset(offset),
                METADATA_WAIT,
            )
            .map_err(|e| self.error(partition, offset, format!("seeking back: {e}")))
    }

    /// After a poll that brought nothing: partitions that should have delivered from their
    /// resume point but did not seek back (see [`ResumeCheck`]).
    fn seek_back_where_silent(&mut self) -> Result<(), SourceError> {
        let mut seeks = Vec::new();
        // Not by the end offset: the brokers that skip also report it behind their logs.
        for read in self.partitions.iter_mut().filter(|p| !p.at_end) {
            if let Some(earlier) = read.resume.silent(read.next) {
                seeks.push((read.partition, earlier));
            }
        }
        for (partition, earlier) in seeks {
            tracing::debug!(topic = %self.topic, partition,
                "nothing arrived from the resume point; seeking back to {earlier}");
            self.seek(partition, earlier)?;
        }
        Ok(())
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
                    let read = &mut self.partitions[index];
                    read.at_end = true;
                    read.passed_end |= read.next >= read.end;
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
        let produced = message.timestamp().to_millis();
        if read.stop_at_end && offset >= read.end && produced > self.started_ms {
            read.newer_seen = true;
        }
        if read.stop_at_end && read.done() {
            // The next pass's: left unread, so the position recorded stays before it.
            return Ok(true);
        }
        read.at_end = false;
        if let ResumeStep::SeekBack(earlier) = read.resume.step(read.next, offset) {
            tracing::debug!(
                topic = %self.topic,
                partition,
                resume = read.next,
                delivered = offset,
                "the broker skipped past the resume point; seeking back to {earlier}"
            );
            self.seek(partition, earlier)?;
            return Ok(true);
        }
        if offset < read.next {
            return Ok(true);
        }
        read.data
            .extend_from_slice(message.payload().unwrap_or_default());
        read.messages.push((offset as u64, read.data.len()));
        read.keys.push(offset as u64, message.key());
        self.taken.messages += 1;
        self.taken.bytes += message.payload_len() as u64;
        read.next = offset + 1;
        Ok(true)
    }
}

/// A read that is done stops its consumer fetching: a kept consumer idles between passes
/// instead of filling librdkafka's queue with messages the next pass would fetch again.
impl Drop for TopicToEnd {
    fn drop(&mut self) {
        if let Err(e) = self.consumer.unassign() {
            tracing::warn!(topic = %self.topic, "cannot stop the consumer fetching: {e}");
        }
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
            if self.spent() {
                self.stopped_short.store(true, Ordering::Release);
                return Ok(None);
            }
            if self.poll_once()? {
                last_progress = std::time::Instant::now();
                continue;
            }
            self.seek_back_where_silent()?;
            if last_progress.elapsed() > STALL_LIMIT {
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

    fn resume_app_ids(&self) -> Vec<(String, String)> {
        let prefixes = self.prefixes();
        self.partitions
            .iter()
            .zip(prefixes)
            .map(|(p, prefix)| (prefix, resume_app_id(&self.topic, p.partition)))
            .collect()
    }

    fn partitions(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.partition).collect()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rdkafka::config::ClientConfig;

    use super::{KeptConsumers, QuietAtEnd, ResumeCheck, ResumeStep, TopicConsumer};

    /// A consumer that never connects (librdkafka connects in the background, on first use).
    fn unconnected() -> Result<TopicConsumer, super::KafkaError> {
        let brokers = "127.0.0.1:9";
        let config = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "test")
            .create_with_context(QuietAtEnd);
        config.map_err(|cause| super::KafkaError::Client {
            brokers: brokers.into(),
            cause,
        })
    }

    #[test]
    fn a_read_takes_up_the_consumer_the_last_read_of_its_topic_left() {
        let kept = KeptConsumers::default();
        let first = kept.take("usage", unconnected).unwrap();
        // A read still holds it: the next read of the topic gets one of its own.
        let second = kept.take("usage", unconnected).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        // Another topic has its own.
        let events = kept.take("events", unconnected).unwrap();
        assert!(!Arc::ptr_eq(&events, &second));
        drop((first, events));
        // Both reads of `usage` done: the one kept last is taken up, not a new one.
        let kept_usage = Arc::as_ptr(&second);
        drop(second);
        let third = kept.take("usage", || panic!("a new consumer instead of the kept one"));
        assert_eq!(Arc::as_ptr(&third.unwrap()), kept_usage);
    }

    #[test]
    fn a_resume_at_the_partition_start_needs_no_check() {
        let mut check = ResumeCheck::new(0, 0);
        assert_eq!(check.step(0, 5), ResumeStep::Take);
    }

    #[test]
    fn a_broker_that_resumes_where_asked_is_taken_at_once() {
        let mut check = ResumeCheck::new(0, 500);
        assert_eq!(check.step(500, 500), ResumeStep::Take);
        assert_eq!(
            check.step(501, 700),
            ResumeStep::Take,
            "later gaps are not checked"
        );
    }

    #[test]
    fn a_skipped_batch_seeks_back_further_each_time_down_to_the_first_offset() {
        let mut check = ResumeCheck::new(100, 5000);
        assert_eq!(check.step(5000, 5100), ResumeStep::SeekBack(3976));
        assert_eq!(check.step(5000, 5100), ResumeStep::SeekBack(2952));
        assert_eq!(check.step(5000, 5100), ResumeStep::SeekBack(904));
        assert_eq!(check.step(5000, 5100), ResumeStep::SeekBack(100));
        // From the very first offset and still past the resume point: a real gap.
        assert_eq!(check.step(5000, 5100), ResumeStep::Take);
    }

    #[test]
    fn silence_from_the_resume_point_seeks_back_until_a_message_confirms_it() {
        let mut check = ResumeCheck::new(0, 5000);
        assert_eq!(check.silent(5000), Some(3976));
        assert_eq!(check.silent(5000), Some(2952));
        assert_eq!(check.step(5000, 4000), ResumeStep::Take);
        assert_eq!(
            check.silent(5000),
            None,
            "confirmed: silence is just a quiet topic"
        );
    }

    #[test]
    fn a_batch_that_covers_the_resume_point_ends_the_check() {
        let mut check = ResumeCheck::new(0, 5000);
        assert_eq!(check.step(5000, 5100), ResumeStep::SeekBack(3976));
        assert_eq!(check.step(5000, 4990), ResumeStep::Take);
        assert_eq!(check.step(5000, 5100), ResumeStep::Take);
    }
}
