//! `transfer_log`: the outbox of the API's changes (`crate::transfer::outbox`). A request's
//! events are stored as `accepted` before any is published, and a `published` row follows
//! once they are. Its schema, its row builder and its reader.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::error::ArrowError;

use super::{text, value};
use crate::domain::UtcMillis;

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::TRANSFER_LOG as SCHEMA;

/// The columns [`read`] needs: `SELECT {COLUMNS} FROM transfer_log`.
pub const COLUMNS: &str = "request_id, kind, events";

/// What a row says of its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// Its events are stored and will be published.
    Accepted,
    /// Its events were published.
    Published,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Accepted => "accepted",
            LogKind::Published => "published",
        }
    }

    fn parse(text: &str) -> Option<LogKind> {
        [LogKind::Accepted, LogKind::Published]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// A row of `transfer_log`.
pub struct LogRow<'a> {
    pub request_id: &'a str,
    pub kind: LogKind,
    /// Who asked (`user:ID`, `operator:NAME`), on an `accepted` row.
    pub user: Option<&'a str>,
    /// The Workspace the request is about, if one.
    pub target: Option<i64>,
    /// The request's events, a line each: key TAB payload.
    pub events: Option<String>,
}

/// The rows, all written at `at`.
pub fn rows(rows: &[LogRow<'_>], at: UtcMillis) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(
        SCHEMA.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.request_id),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.kind.as_str()),
            )),
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
}

/// A row read back.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredLogRow {
    pub request_id: String,
    pub kind: LogKind,
    pub events: Option<String>,
}

/// The rows of `batch`, by column name ([`COLUMNS`]).
pub fn read(batch: &RecordBatch) -> Result<Vec<StoredLogRow>, String> {
    let (ids, kinds, events) = (
        text(batch, "request_id")?,
        text(batch, "kind")?,
        text(batch, "events")?,
    );
    (0..batch.num_rows())
        .map(|row| {
            let kind = LogKind::parse(kinds.value(row))
                .ok_or_else(|| format!("unknown kind '{}'", kinds.value(row)))?;
            Ok(StoredLogRow {
                request_id: ids.value(row).to_owned(),
                kind,
                events: value(&events, row, |e, r| e.value(r).to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_by_column_name() {
        let written = rows(
            &[
                LogRow {
                    request_id: "r1",
                    kind: LogKind::Accepted,
                    user: Some("user:ana"),
                    target: Some(101),
                    events: Some("8901\t{}".into()),
                },
                LogRow {
                    request_id: "r1",
                    kind: LogKind::Published,
                    user: None,
                    target: None,
                    events: None,
                },
            ],
            UtcMillis::from_millis(0),
        )
        .unwrap();
        assert!(written.column(3).is_valid(0) && written.column(3).is_null(1));
        // As `SELECT events, kind, request_id` would return them.
        let picked = written.project(&[5, 1, 0]).unwrap();
        let read = read(&picked).unwrap();
        assert_eq!(read[0].kind, LogKind::Accepted);
        assert_eq!(read[0].events.as_deref(), Some("8901\t{}"));
        assert_eq!(read[1].kind, LogKind::Published);
        assert_eq!(read[1].events, None);
        assert_eq!(read[1].request_id, "r1");
    }
}
