//! tables: the lake's tables as Arrow data, one module per table that owns its row builder
//! and its reader (by column name, so a column added later or a `SELECT *` does not shift
//! what is read), and loads it from the lake. The lake (`crate::lake`) declares, stores and
//! fences the tables; the pipeline, billing and the server go through these modules to
//! write and read rows.

pub mod billed_slices;
pub mod dead_letters;
pub mod directory;
pub mod invoices;
pub mod quarantine;
pub mod sim_events;
pub mod sim_events_snapshot;
mod slices;
pub mod transfer_log;
pub mod usage;

pub use slices::CorrectionMark;

use arrow::array::{
    Array, AsArray, BinaryArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};

/// A column of `batch` by name, as text ([`crate::lake::utf8_column`]).
pub(crate) fn text(batch: &RecordBatch, name: &str) -> Result<StringArray, String> {
    let i = (batch.schema().index_of(name)).map_err(|_| format!("no column {name}"))?;
    crate::lake::utf8_column(batch, i).map_err(|e| format!("{name}: {e}"))
}

/// A column of `batch` by name, as bytes (whatever binary type the reader gave it).
pub(crate) fn binary(batch: &RecordBatch, name: &str) -> Result<BinaryArray, String> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))?;
    let bytes =
        arrow::compute::cast(column, &DataType::Binary).map_err(|e| format!("{name}: {e}"))?;
    Ok(bytes.as_binary::<i32>().clone())
}

/// A BIGINT column of `batch` by name.
pub(crate) fn int<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| format!("{name} is not a BIGINT column"))
}

/// A timestamp (microseconds) column of `batch` by name.
pub(crate) fn micros<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a TimestampMicrosecondArray, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or_else(|| format!("{name} is not a timestamp column"))
}

/// Row `row` of a nullable column, `None` when null.
pub(crate) fn value<A: Array, T>(
    column: &A,
    row: usize,
    get: impl Fn(&A, usize) -> T,
) -> Option<T> {
    column.is_valid(row).then(|| get(column, row))
}
