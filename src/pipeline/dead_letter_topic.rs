//! The optional dead-letter topic (`ingest --dead-letter-topic`): each new dead letter is
//! also sent there, with its original key and bytes and the reason in headers, for teams
//! that watch a topic rather than a table. The `dead_letters` table stays the record: the
//! messages are sent before the pass commits (at least once; a pass that is dropped or
//! dies sends its letters again), and a broker that refuses them is logged and counted
//! without stopping ingestion.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use crate::lake::LakeTable;
use crate::source::kafka::{publish_messages, Outgoing};

/// Header names on dead-letter messages.
pub const SOURCE_HEADER: &str = "simtally-source";
pub const REASON_HEADER: &str = "simtally-reason";
pub const DETAIL_HEADER: &str = "simtally-detail";

/// The messages for rows of the `dead_letters` table.
pub(super) fn messages(batches: &[RecordBatch]) -> Result<Vec<Outgoing>, String> {
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str, to: &DataType| {
            let index = batch
                .schema()
                .index_of(name)
                .map_err(|e| format!("{}: {e}", LakeTable::DeadLetters.name()))?;
            cast(batch.column(index), to).map_err(|e| format!("{name}: {e}"))
        };
        let (source, reason, detail) = (
            column("source", &DataType::Utf8)?,
            column("reason", &DataType::Utf8)?,
            column("detail", &DataType::Utf8)?,
        );
        let (payload, key) = (
            column("payload", &DataType::Binary)?,
            column("key", &DataType::Binary)?,
        );
        let text = |array: &arrow::array::ArrayRef, row: usize| {
            array.as_string::<i32>().value(row).as_bytes().to_vec()
        };
        let keys = key.as_binary::<i32>();
        for row in 0..batch.num_rows() {
            out.push(Outgoing {
                key: keys.is_valid(row).then(|| keys.value(row).to_vec()),
                payload: payload.as_binary::<i32>().value(row).to_vec(),
                headers: vec![
                    (SOURCE_HEADER, text(&source, row)),
                    (REASON_HEADER, text(&reason, row)),
                    (DETAIL_HEADER, text(&detail, row)),
                ],
            });
        }
    }
    Ok(out)
}

/// Sends the pass's new dead letters; says how many could not be sent (and why, in the log).
pub(super) async fn send(brokers: &str, topic: &str, batches: &[RecordBatch]) -> u64 {
    let messages = match messages(batches) {
        Ok(messages) if messages.is_empty() => return 0,
        Ok(messages) => messages,
        Err(e) => {
            tracing::error!("reading dead letters for topic '{topic}': {e}");
            return batches.iter().map(|b| b.num_rows() as u64).sum();
        }
    };
    let count = messages.len() as u64;
    match publish_messages(brokers, topic, messages).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(
                "{count} dead letters were not sent to topic '{topic}' (they are in the \
                 dead_letters table): {e}"
            );
            count
        }
    }
}
