//! The outbox of the API's changes (SIM transfers and directory changes): a request's
//! events are committed to the lake (`transfer_log`) in one Delta commit before any is
//! published, so a request is either wholly accepted or not at
//! all, whatever fails after. Accepted requests are published until a `published` row says
//! so; a repeat is harmless, because ingest ignores an event id it has.

use arrow::array::RecordBatch;

use crate::domain::{Actor, UtcMillis, WorkspaceId};
use crate::kafka::{publish, KafkaError};
use crate::lake::{Lake, LakeError, LakeTable};
use crate::tables::transfer_log::{self, LogKind, LogRow};

/// One accepted request: its id and its events, (key, payload) in order.
pub type Accepted = (String, Vec<(String, Vec<u8>)>);

fn log_rows(rows: &[LogRow<'_>], at: UtcMillis) -> Result<RecordBatch, LakeError> {
    transfer_log::rows(rows, at).map_err(|e| LakeError::Corrupt {
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
        kind: LogKind::Accepted,
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
            kind: LogKind::Published,
            user: None,
            target: None,
            events: None,
        })
        .collect();
    append(lake, log_rows(&rows, UtcMillis::now())?).await
}

/// Accepted requests without a `published` row, oldest first.
pub async fn pending(lake: &Lake) -> Result<Vec<Accepted>, LakeError> {
    let sql = format!("SELECT {} FROM t ORDER BY at", transfer_log::COLUMNS);
    let batches = lake.select(LakeTable::TransferLog, &sql).await?;
    let corrupt = |detail: String| LakeError::Corrupt {
        table: LakeTable::TransferLog.name(),
        detail,
    };
    let mut accepted: Vec<Accepted> = Vec::new();
    let mut published = std::collections::HashSet::new();
    for batch in &batches {
        for row in transfer_log::read(batch).map_err(corrupt)? {
            if row.kind == LogKind::Published {
                published.insert(row.request_id);
                continue;
            }
            let messages = row
                .events
                .as_deref()
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split_once('\t'))
                .map(|(key, payload)| (key.to_owned(), payload.as_bytes().to_vec()))
                .collect();
            accepted.push((row.request_id, messages));
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
