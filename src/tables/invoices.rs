//! `invoices`: every issued invoice, as its JSON document; never changed once written. Its
//! schema, its row builder and its reader. What a document holds is billing's
//! (`crate::billing::document`); this module stores and reads it as text.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::error::ArrowError;

use super::text;
use chrono::{DateTime, Utc};

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::INVOICES as SCHEMA;

/// One issued invoice as a row.
pub struct InvoiceRow<'a> {
    pub workspace_id: i64,
    pub period: &'a str,
    pub invoice_id: &'a str,
    /// The invoice as JSON.
    pub document: String,
}

/// The rows of invoices issued together at `issued_at`.
pub fn rows(
    invoices: &[InvoiceRow<'_>],
    issued_at: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let n = invoices.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            invoices.iter().map(|i| i.workspace_id),
        )),
        Arc::new(StringArray::from_iter_values(
            invoices.iter().map(|i| i.period),
        )),
        Arc::new(StringArray::from_iter_values(
            invoices.iter().map(|i| i.invoice_id),
        )),
        Arc::new(
            TimestampMicrosecondArray::from(vec![issued_at.timestamp_micros(); n])
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            invoices.iter().map(|i| i.document.as_str()),
        )),
    ];
    RecordBatch::try_new(SCHEMA.clone(), columns)
}

/// The `document` column of rows read back (any query that selects it).
pub fn documents(batch: &RecordBatch) -> Result<StringArray, String> {
    text(batch, "document")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_by_column_name() {
        let row = |workspace_id, invoice_id, document: &str| InvoiceRow {
            workspace_id,
            period: "2026-11",
            invoice_id,
            document: document.to_owned(),
        };
        let at = DateTime::from_timestamp_micros(1_764_547_200_000_123).unwrap();
        let batch = rows(
            &[
                row(101, "101-2026-11", "{\"a\":1}"),
                row(102, "102-2026-11", "{}"),
            ],
            at,
        )
        .unwrap();
        // A query that selects the document among other columns, in another order.
        let picked = batch.project(&[2, 4, 0]).unwrap();
        let read = documents(&picked).unwrap();
        assert_eq!(read.value(0), "{\"a\":1}");
        assert_eq!(read.value(1), "{}");
        assert!(documents(&batch.project(&[0]).unwrap()).is_err());
    }
}
