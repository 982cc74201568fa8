//! The optional dead-letter topic (`ingest --dead-letter-topic`): each new dead letter is
//! also sent there, with its original key and bytes and the reason in headers, for teams
//! that watch a topic rather than a table. The `dead_letters` table stays the record: the
//! messages are sent before the pass commits (at least once; a pass that is dropped or
//! dies sends its letters again), and a broker that refuses them is logged and counted
//! without stopping ingestion.

use arrow::array::RecordBatch;

use crate::kafka::{publish_messages, Outgoing};
use crate::tables::dead_letters::StoredLetter;

/// Header names on dead-letter messages.
pub const SOURCE_HEADER: &str = "simtally-source";
pub const REASON_HEADER: &str = "simtally-reason";
pub const DETAIL_HEADER: &str = "simtally-detail";

/// The messages for rows of the `dead_letters` table.
pub(super) fn messages(batches: &[RecordBatch]) -> Result<Vec<Outgoing>, String> {
    let letters = crate::tables::dead_letters::read(batches)?;
    let message = |letter: StoredLetter| Outgoing {
        headers: vec![
            (SOURCE_HEADER, letter.source.into_bytes()),
            (REASON_HEADER, letter.reason.into_bytes()),
            (DETAIL_HEADER, letter.detail.into_bytes()),
        ],
        key: letter.key,
        payload: letter.payload,
    };
    Ok(letters.into_iter().map(message).collect())
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
