//! `sim_events_snapshot`: per partition of the events topic, the SIM events read from it up
//! to `through_seq` (see `crate::pipeline::snapshot`, which writes and loads them). The
//! columns of `sim_events` without `source` and `ingested_at`, plus `through_seq` and
//! `kafka_partition`. Its schema, its row builder and its reader.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::error::ArrowError;

use super::sim_events::{self, EventRows};
use crate::attribute::SequencedEvent;
use crate::domain::UtcMillis;

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::SIM_EVENTS_SNAPSHOT as SCHEMA;

/// The columns [`read`] needs: `SELECT {columns()} FROM sim_events_snapshot`.
pub fn columns() -> String {
    format!("{}, kafka_partition", sim_events::COLUMNS)
}

/// The snapshot rows of one partition's events, through `through`.
pub fn rows(
    events: &[&SequencedEvent],
    through: i64,
    partition: i32,
) -> Result<RecordBatch, ArrowError> {
    let mut rows = EventRows::new(UtcMillis::from_millis(0));
    for event in events {
        rows.append(event, "");
    }
    let stored = rows.finish();
    let n = events.len();
    let columns = SCHEMA
        .fields()
        .iter()
        .map(|field| -> Result<Arc<dyn Array>, ArrowError> {
            Ok(match field.name().as_str() {
                "through_seq" => Arc::new(Int64Array::from(vec![through; n])),
                "kafka_partition" => Arc::new(Int64Array::from(vec![i64::from(partition); n])),
                name => stored
                    .column_by_name(name)
                    .cloned()
                    .ok_or_else(|| ArrowError::SchemaError(format!("no {name}")))?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(SCHEMA.clone(), columns)
}

/// The events of `batch` with the partition each was read from, by column name.
pub fn read(batch: &RecordBatch) -> Result<Vec<(SequencedEvent, Option<i32>)>, String> {
    let events = sim_events::read(std::slice::from_ref(batch))?;
    let partitions = super::int(batch, "kafka_partition")?;
    Ok(events
        .into_iter()
        .enumerate()
        .map(|(row, event)| (event, i32::try_from(partitions.value(row)).ok()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::testing::tenure_events;

    #[test]
    fn a_snapshot_reads_back_its_events_and_partition() {
        let events = tenure_events(&[(1_000, 101), (2_000, 102), (3_000, 103)]);
        let refs: Vec<&SequencedEvent> = events.iter().collect();
        let batch = rows(&refs, 2, 7).unwrap();
        let through = super::super::int(&batch, "through_seq").unwrap();
        assert_eq!(through.values(), &[2, 2, 2]);
        // The columns a load selects, in its order.
        let names: Vec<String> = columns().split(", ").map(str::to_owned).collect();
        let picked: Vec<usize> = names
            .iter()
            .map(|n| batch.schema().index_of(n).unwrap())
            .collect();
        let read = read(&batch.project(&picked).unwrap()).unwrap();
        assert_eq!(read.len(), 3);
        for ((event, partition), written) in read.iter().zip(&events) {
            assert_eq!(*partition, Some(7));
            assert_eq!(event.seq, written.seq);
            assert_eq!(event.event, written.event);
        }
    }
}
