//! Per-file statistics for the Delta log (`add.stats`): row count, and per column the
//! minimum, maximum and null count, taken from the Parquet footer just written. Readers use
//! them to skip files, so a bound must never be tighter than the data: a column whose
//! bounds cannot be stated exactly in the log's JSON is left out, which only means no
//! skipping on it.

use arrow::datatypes::{DataType, Schema};
use chrono::{DateTime, NaiveDate};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use serde_json::{Map, Value};

/// The `stats` JSON of one data file whose columns are `schema`'s fields, in order.
pub(super) fn file_stats(metadata: &ParquetMetaData, schema: &Schema) -> String {
    let mut min_values = Map::new();
    let mut max_values = Map::new();
    let mut null_count = Map::new();
    for (index, field) in schema.fields().iter().enumerate() {
        let column = ColumnStats::merge(metadata, index, field.data_type());
        if let Some((min, max)) = column.bounds {
            min_values.insert(field.name().clone(), min);
            max_values.insert(field.name().clone(), max);
        }
        if let Some(nulls) = column.nulls {
            null_count.insert(field.name().clone(), Value::from(nulls));
        }
    }
    let stats = serde_json::json!({
        "numRecords": metadata.file_metadata().num_rows(),
        "minValues": min_values,
        "maxValues": max_values,
        "nullCount": null_count,
    });
    stats.to_string()
}

/// Bounds kept while merging row groups: integers compare as numbers, text as bytes (the
/// order Parquet and Delta use for UTF-8).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Int(i64),
    Text(String),
}

struct ColumnStats {
    bounds: Option<(Value, Value)>,
    nulls: Option<i64>,
}

impl ColumnStats {
    fn merge(metadata: &ParquetMetaData, index: usize, data_type: &DataType) -> ColumnStats {
        let mut bounds: Option<(Bound, Bound)> = None;
        let mut exact = true;
        let mut nulls = Some(0i64);
        for row_group in metadata.row_groups() {
            let Some(statistics) = row_group.columns().get(index).and_then(|c| c.statistics())
            else {
                return ColumnStats {
                    bounds: None,
                    nulls: None,
                };
            };
            nulls = nulls
                .zip(statistics.null_count_opt())
                .map(|(a, b)| a + b as i64);
            match row_group_bounds(statistics) {
                Some((min, max)) => {
                    bounds = Some(match bounds {
                        None => (min, max),
                        Some((lo, hi)) => (lo.min(min), hi.max(max)),
                    })
                }
                // A row group of only nulls has no bounds and narrows nothing.
                None if statistics.null_count_opt() == Some(row_group.num_rows() as u64) => {}
                None => exact = false,
            }
        }
        let bounds = bounds
            .filter(|_| exact)
            .and_then(|(min, max)| Some((to_json(min, data_type)?, to_json(max, data_type)?)));
        ColumnStats { bounds, nulls }
    }
}

fn row_group_bounds(statistics: &Statistics) -> Option<(Bound, Bound)> {
    match statistics {
        Statistics::Int32(s) => Some((
            Bound::Int(i64::from(*s.min_opt()?)),
            Bound::Int(i64::from(*s.max_opt()?)),
        )),
        Statistics::Int64(s) => Some((Bound::Int(*s.min_opt()?), Bound::Int(*s.max_opt()?))),
        // Parquet truncates long strings in statistics; a truncated bound is not a value of
        // the column, so it is not stated.
        Statistics::ByteArray(s) if s.min_is_exact() && s.max_is_exact() => Some((
            Bound::Text(String::from_utf8(s.min_opt()?.data().to_vec()).ok()?),
            Bound::Text(String::from_utf8(s.max_opt()?.data().to_vec()).ok()?),
        )),
        _ => None,
    }
}

/// A bound as the Delta log writes it for the column's type; `None` for types it cannot
/// state exactly (decimals would go through a JSON float; binary has no JSON form).
fn to_json(bound: Bound, data_type: &DataType) -> Option<Value> {
    match (bound, data_type) {
        (Bound::Int(v), DataType::Int16 | DataType::Int32 | DataType::Int64) => Some(v.into()),
        (Bound::Int(days), DataType::Date32) => {
            let date = NaiveDate::from_epoch_days(i32::try_from(days).ok()?)?;
            Some(date.format("%Y-%m-%d").to_string().into())
        }
        (Bound::Int(micros), DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, _))
            if micros % 1000 == 0 =>
        {
            // The log keeps timestamps to the millisecond; sub-millisecond bounds would be
            // rounded past the data, so they are left out.
            let time = DateTime::from_timestamp_micros(micros)?;
            Some(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into())
        }
        (Bound::Text(text), DataType::Utf8) => Some(text.into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, Date32Array, Decimal128Array, Int16Array, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, TimeUnit};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("slice", DataType::Int16, false),
            Field::new("day", DataType::Date32, false),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("name", DataType::Utf8, true),
            Field::new("cost", DataType::Decimal128(18, 10), false),
            Field::new("long", DataType::Utf8, false),
        ]))
    }

    fn batch(ids: &[i64], names: &[Option<&str>]) -> RecordBatch {
        let n = ids.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(Int16Array::from_iter_values(ids.iter().map(|i| *i as i16))),
            Arc::new(Date32Array::from_iter_values(
                ids.iter().map(|i| 20_000 + *i as i32),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(ids.iter().map(|i| i * 1_000_000))
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(names.to_vec())),
            Arc::new(
                Decimal128Array::from_iter_values(ids.iter().map(|i| *i as i128))
                    .with_precision_and_scale(18, 10)
                    .unwrap(),
            ),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|_| "x".repeat(100)),
            )),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    /// Two row groups, so that the bounds are merged across them.
    fn written_stats() -> Value {
        let mut writer =
            ArrowWriter::try_new(Vec::new(), schema(), Some(WriterProperties::default())).unwrap();
        writer.write(&batch(&[5, 3], &[Some("m"), None])).unwrap();
        writer.flush().unwrap();
        writer
            .write(&batch(&[9, 4, 7], &[Some("b"), Some("z"), None]))
            .unwrap();
        let metadata = writer.close().unwrap();
        serde_json::from_str(&file_stats(&metadata, &schema())).unwrap()
    }

    #[test]
    fn bounds_and_null_counts_cover_every_row_group() {
        let stats = written_stats();
        assert_eq!(stats["numRecords"], 5);
        assert_eq!(stats["minValues"]["id"], 3);
        assert_eq!(stats["maxValues"]["id"], 9);
        assert_eq!(stats["minValues"]["slice"], 3);
        assert_eq!(stats["minValues"]["day"], "2024-10-07");
        assert_eq!(stats["maxValues"]["day"], "2024-10-13");
        assert_eq!(stats["minValues"]["at"], "1970-01-01T00:00:03.000Z");
        assert_eq!(stats["maxValues"]["at"], "1970-01-01T00:00:09.000Z");
        assert_eq!(stats["minValues"]["name"], "b");
        assert_eq!(stats["maxValues"]["name"], "z");
        assert_eq!(stats["nullCount"]["name"], 2);
        assert_eq!(stats["nullCount"]["id"], 0);
    }

    #[test]
    fn inexact_bounds_are_left_out() {
        let stats = written_stats();
        // Decimals would need a JSON float; 100-character strings are truncated by Parquet.
        for column in ["cost", "long"] {
            assert!(stats["minValues"].get(column).is_none(), "{column}");
            assert!(stats["maxValues"].get(column).is_none(), "{column}");
            assert_eq!(stats["nullCount"][column], 0);
        }
    }
}
