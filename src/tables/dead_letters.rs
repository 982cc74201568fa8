//! `dead_letters`: inputs that could not be used, byte for byte, with where they came
//! from and why; replayed after a fix, and sent to the dead-letter topic if one is set.

use std::sync::Arc;

use arrow::array::{Array, BinaryBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};

use super::{binary, text, value};
use crate::domain::{Rejection, UtcMillis};
use crate::lake::{Lake, LakeError, LakeTable};

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::DEAD_LETTERS as SCHEMA;

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
            SCHEMA.clone(),
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

/// A dead letter as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLetter {
    pub source: String,
    pub reason: String,
    pub detail: String,
    pub payload: Vec<u8>,
    pub key: Option<Vec<u8>>,
    pub input: LetterInput,
}

/// Every dead letter in the lake. Every column (`SELECT *`): a lake written before `input`
/// existed has none, and its letters read as usage.
pub async fn load(lake: &Lake) -> Result<Vec<StoredLetter>, LakeError> {
    let batches = lake
        .select(LakeTable::DeadLetters, "SELECT * FROM t")
        .await?;
    read(&batches).map_err(|detail| LakeError::Corrupt {
        table: LakeTable::DeadLetters.name(),
        detail,
    })
}

/// The letters in `batches`, read by column name; `input` may be missing.
pub fn read(batches: &[RecordBatch]) -> Result<Vec<StoredLetter>, String> {
    let mut letters = Vec::new();
    for batch in batches {
        let (sources, reasons, details) = (
            text(batch, "source")?,
            text(batch, "reason")?,
            text(batch, "detail")?,
        );
        let (payloads, keys) = (binary(batch, "payload")?, binary(batch, "key")?);
        let inputs = batch
            .column_by_name("input")
            .map(|_| text(batch, "input"))
            .transpose()?;
        for row in 0..batch.num_rows() {
            let input = inputs
                .as_ref()
                .filter(|i| i.is_valid(row))
                .map(|i| i.value(row));
            letters.push(StoredLetter {
                source: sources.value(row).to_owned(),
                reason: reasons.value(row).to_owned(),
                detail: details.value(row).to_owned(),
                payload: payloads.value(row).to_vec(),
                key: value(&keys, row, |c, r| c.value(r).to_vec()),
                input: LetterInput::parse(input),
            });
        }
    }
    Ok(letters)
}
