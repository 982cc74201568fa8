//! The outbox of the API's changes (SIM transfers and directory changes): a request's
//! events are committed to the lake (`transfer_log`) in one Delta commit before any is
//! published, so a request is either wholly accepted or not at
//! all, whatever fails after. Accepted requests are published until a `published` row says
//! so; a repeat is harmless, because ingest ignores an event id it has.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};

use crate::domain::{Actor, UtcMillis, WorkspaceId};
use crate::kafka::{publish, KafkaError};
use crate::lake::schema::TRANSFER_LOG;
use crate::lake::{utf8_column, Lake, LakeError, LakeTable};

/// One accepted request: its id and its events, (key, payload) in order.
pub type Accepted = (String, Vec<(String, Vec<u8>)>);

/// A row of `transfer_log`.
struct LogRow<'a> {
    request_id: &'a str,
    kind: &'static str,
    user: Option<&'a str>,
    target: Option<i64>,
    events: Option<String>,
}

fn log_rows(rows: &[LogRow<'_>], at: UtcMillis) -> Result<RecordBatch, LakeError> {
    RecordBatch::try_new(
        TRANSFER_LOG.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.request_id),
            )),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.kind))),
            Arc::new(
                TimestampMicrosecondArray::from(vec![at.micros(); rows.len()]).with_timezone("UTC"),
            ),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.user))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.target))),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| r.events.as_deref()),
            )),
        ],
    )
    .map_err(|e| LakeError::Corrupt {
        table: LakeTable::TransferLog.name(),
        detail: format!("building a row: {e}"),
    })
}

/// One commit of `batch`. The Parquet writer inside an appender cannot be shared between
/// threads, so the commit runs on a thread of its own and this future stays `Send` (the
/// HTTP handlers and the retry loop need that).
async fn append(lake: &Lake, batch: RecordBatch) -> Result<(), LakeError> {
    let lake = lake.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let mut appender = lake.appender(LakeTable::TransferLog).await?;
            appender.write(batch).await?;
            appender.commit(Vec::new()).await?;
            Ok(())
        })
    })
    .await
    .map_err(|e| LakeError::Internal(format!("writing transfer_log: {e}")))?
}

/// Commits the request as accepted: from here on its events will be published. `actor`
/// is who asked (`user:ID`, `operator:NAME`), `target` the Workspace it is about, if one.
pub async fn accept(
    lake: &Lake,
    request_id: &str,
    actor: &Actor,
    target: Option<WorkspaceId>,
    messages: &[(String, Vec<u8>)],
) -> Result<(), LakeError> {
    let actor_text = actor.to_string();
    // Keys are ICCIDs or ids and payloads JSON objects: a line each, key TAB payload.
    let lines: Vec<String> = messages
        .iter()
        .map(|(key, payload)| format!("{key}\t{}", String::from_utf8_lossy(payload)))
        .collect();
    let row = LogRow {
        request_id,
        kind: "accepted",
        user: Some(&actor_text),
        target: target.map(WorkspaceId::get),
        events: Some(lines.join("\n")),
    };
    append(lake, log_rows(&[row], UtcMillis::now())?).await
}

async fn mark_published(lake: &Lake, request_ids: &[String]) -> Result<(), LakeError> {
    if request_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<LogRow<'_>> = request_ids
        .iter()
        .map(|id| LogRow {
            request_id: id,
            kind: "published",
            user: None,
            target: None,
            events: None,
        })
        .collect();
    append(lake, log_rows(&rows, UtcMillis::now())?).await
}

/// Accepted requests without a `published` row, oldest first.
pub async fn pending(lake: &Lake) -> Result<Vec<Accepted>, LakeError> {
    let batches = lake
        .select(
            LakeTable::TransferLog,
            "SELECT request_id, kind, events FROM t ORDER BY at",
        )
        .await?;
    let corrupt = |detail: String| LakeError::Corrupt {
        table: LakeTable::TransferLog.name(),
        detail,
    };
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut published = std::collections::HashSet::new();
    for batch in &batches {
        let (ids, kinds, events) = (
            utf8_column(batch, 0).map_err(corrupt)?,
            utf8_column(batch, 1).map_err(corrupt)?,
            utf8_column(batch, 2).map_err(corrupt)?,
        );
        for row in 0..batch.num_rows() {
            let id = ids.value(row).to_owned();
            if kinds.value(row) == "published" {
                published.insert(id);
                continue;
            }
            let text = if events.is_valid(row) {
                events.value(row)
            } else {
                ""
            };
            let messages = text
                .lines()
                .filter_map(|line| line.split_once('\t'))
                .map(|(key, payload)| (key.to_owned(), payload.as_bytes().to_vec()))
                .collect();
            accepted.push((id, messages));
        }
    }
    Ok(accepted
        .into_iter()
        .filter(|(id, _)| !published.contains(id))
        .collect())
}

/// Errors of publishing transfer requests: the lake's or the broker's, both outside systems
/// (the requests stay pending and are published on the next try).
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Publishes every pending request to `topic`, oldest first, and records each as published.
/// Returns the ids published.
pub async fn publish_pending(
    lake: &Lake,
    brokers: &str,
    topic: &str,
) -> Result<Vec<String>, OutboxError> {
    let mut done = Vec::new();
    for (request_id, messages) in pending(lake).await? {
        publish(brokers, topic, messages).await?;
        mark_published(lake, std::slice::from_ref(&request_id)).await?;
        done.push(request_id);
    }
    Ok(done)
}
