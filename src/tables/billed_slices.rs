//! `billed_slices`: which issued invoice billed each usage slice, so that a slice reaching a
//! sealed period later is billed once, as an adjustment, and never twice. Its schema and its
//! row builder; billing reads it in SQL joins (`crate::billing::read`).

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int16Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int16Type;
use arrow::error::ArrowError;

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::BILLED_SLICES as SCHEMA;

/// Slice keys: a batch with the columns `record_id` (BIGINT) and `slice` (SMALLINT), as a
/// query of the slices an invoice bills returns them.
pub fn keys(records: Vec<i64>, slices: Vec<i16>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_from_iter([
        ("record_id", Arc::new(Int64Array::from(records)) as ArrayRef),
        ("slice", Arc::new(Int16Array::from(slices)) as ArrayRef),
    ])
}

/// The rows saying that invoice `invoice_id` of `workspace` billed `keys` for `period`.
pub fn rows(
    workspace: i64,
    period: &str,
    invoice_id: &str,
    keys: &RecordBatch,
) -> Result<RecordBatch, ArrowError> {
    let n = keys.num_rows();
    let record_id = super::int(keys, "record_id").map_err(ArrowError::SchemaError)?;
    let slice = keys
        .column_by_name("slice")
        .and_then(|c| c.as_primitive_opt::<Int16Type>())
        .ok_or_else(|| ArrowError::SchemaError("slice is not a SMALLINT column".into()))?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![workspace; n])),
        Arc::new(StringArray::from(vec![period; n])),
        Arc::new(record_id.clone()),
        Arc::new(slice.clone()),
        Arc::new(StringArray::from(vec![invoice_id; n])),
    ];
    RecordBatch::try_new(SCHEMA.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_take_the_keys_by_column_name() {
        let keys = keys(vec![7, 8], vec![0, 1]).unwrap();
        // The columns in another order, as another query could return them.
        let swapped = keys.project(&[1, 0]).unwrap();
        let batch = rows(101, "2026-11", "101-2026-11", &swapped).unwrap();
        let record_id = super::super::int(&batch, "record_id").unwrap();
        assert_eq!(record_id.values(), &[7, 8]);
        let slice = batch
            .column_by_name("slice")
            .unwrap()
            .as_primitive::<Int16Type>();
        assert_eq!(slice.values(), &[0, 1]);
        assert!(rows(101, "2026-11", "x", &keys.project(&[0]).unwrap()).is_err());
    }
}
