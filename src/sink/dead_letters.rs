use std::sync::Arc;

use arrow::array::{BinaryBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};

use crate::decode::Rejection;
use crate::domain::UtcMillis;
use crate::lake::schema;

/// Which input a dead letter came from: what decodes it when it is replayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LetterInput {
    Usage,
    /// The events input: SIM lifecycle and directory events.
    Events,
}

impl LetterInput {
    pub fn as_str(self) -> &'static str {
        match self {
            LetterInput::Usage => "usage",
            LetterInput::Events => "events",
        }
    }

    /// The stored `input` value; letters stored before the column existed are usage.
    pub fn parse(stored: Option<&str>) -> Self {
        match stored {
            Some("events") => LetterInput::Events,
            _ => LetterInput::Usage,
        }
    }
}

/// An input that could not be used, with where it came from and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// `file:line` for files; `topic/partition/offset` for Kafka.
    pub source: String,
    pub rejection: Rejection,
    /// The input exactly as received.
    pub payload: Vec<u8>,
    /// The Kafka message's key, if it had one.
    pub key: Option<Vec<u8>>,
    pub input: LetterInput,
}

/// Rows of the `dead_letters` table.
pub struct DeadLetterRows {
    source: StringBuilder,
    reason: StringBuilder,
    detail: StringBuilder,
    payload: BinaryBuilder,
    received_at: TimestampMicrosecondBuilder,
    key: BinaryBuilder,
    input: StringBuilder,
    received_at_value: i64,
    len: usize,
}

impl DeadLetterRows {
    pub fn new(received_at: UtcMillis) -> Self {
        DeadLetterRows {
            source: StringBuilder::new(),
            reason: StringBuilder::new(),
            detail: StringBuilder::new(),
            payload: BinaryBuilder::new(),
            received_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            key: BinaryBuilder::new(),
            input: StringBuilder::new(),
            received_at_value: received_at.micros(),
            len: 0,
        }
    }

    pub fn append(&mut self, letter: &DeadLetter) {
        self.source.append_value(&letter.source);
        self.reason.append_value(letter.rejection.reason.as_str());
        self.detail.append_value(&letter.rejection.detail);
        self.payload.append_value(&letter.payload);
        self.received_at.append_value(self.received_at_value);
        self.key.append_option(letter.key.as_deref());
        self.input.append_value(letter.input.as_str());
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(&mut self) -> RecordBatch {
        self.len = 0;
        RecordBatch::try_new(
            schema::DEAD_LETTERS.clone(),
            vec![
                Arc::new(self.source.finish()),
                Arc::new(self.reason.finish()),
                Arc::new(self.detail.finish()),
                Arc::new(self.payload.finish()),
                Arc::new(self.received_at.finish()),
                Arc::new(self.key.finish()),
                Arc::new(self.input.finish()),
            ],
        )
        .unwrap_or_else(|e| unreachable!("dead letter builders follow the schema: {e}"))
    }
}
