//! The lake's table schemas: the contract with every report, query and invoice.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Volumes: MB (data) or message counts (SMS), 6 decimal places.
pub const VOLUME_TYPE: DataType = DataType::Decimal128(18, 6);
/// Money: 10 decimal places, as on the wire.
pub const MONEY_TYPE: DataType = DataType::Decimal128(18, 10);

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn slice_columns() -> Vec<Field> {
    vec![
        Field::new("usage_date", DataType::Date32, false),
        Field::new("record_id", DataType::Int64, false),
        Field::new("slice", DataType::Int16, false),
        Field::new("iccid", DataType::Utf8, false),
        Field::new("traffic_type", DataType::Utf8, false),
        Field::new("start_time", timestamp_type(), false),
        Field::new("end_time", timestamp_type(), false),
        Field::new("volume_rx", VOLUME_TYPE, false),
        Field::new("volume_tx", VOLUME_TYPE, false),
        Field::new("volume_total", VOLUME_TYPE, false),
        Field::new("cost", MONEY_TYPE, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("operator_name", DataType::Utf8, true),
        Field::new("mcc", DataType::Utf8, true),
        Field::new("mnc", DataType::Utf8, true),
        Field::new("country_name", DataType::Utf8, true),
        Field::new("imsi", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        // Set on rows written to correct earlier ones after a late lifecycle event: the
        // ids of the events that caused it. NULL on a record's first attribution.
        Field::new("correction", DataType::Utf8, true),
        // On a reversal row: the slice (of the same record) whose amounts it cancels.
        Field::new("reverses_slice", DataType::Int16, true),
    ]
}

/// `usage`: attributed slices, not partitioned; each row group in `workspace_id`,
/// `usage_date` and `iccid` order (docs/lake-layout.md).
pub static USAGE: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![Field::new("workspace_id", DataType::Int64, false)];
    fields.extend(slice_columns());
    Arc::new(Schema::new(fields))
});

/// `quarantine`: slices without an owner, with the reason.
pub static QUARANTINE: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = slice_columns();
    fields.push(Field::new("reason", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
});

/// `dead_letters`: inputs that could not be used, byte for byte.
pub static DEAD_LETTERS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("detail", DataType::Utf8, false),
        Field::new("payload", DataType::Binary, false),
        Field::new("received_at", timestamp_type(), false),
        // The Kafka message's key (null for file lines and keyless messages).
        Field::new("key", DataType::Binary, true),
        // Which input it came from, so a replay offers it to the right decoder: `usage` or
        // `events` (NULL: written before the column existed, when only usage was replayed).
        Field::new("input", DataType::Utf8, true),
    ]))
});

/// `sim_events`: every accepted lifecycle event.
pub static SIM_EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("iccid", DataType::Utf8, false),
        Field::new("workspace_id", DataType::Int64, true),
        Field::new("source_workspace_id", DataType::Int64, true),
        Field::new("target_workspace_id", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        Field::new("device_id", DataType::Utf8, true),
    ]))
});

/// `sim_events_snapshot`: per partition of the events topic, the SIM events stored from it
/// up to `through_seq`, so that a follower assigned the partition loads them from here plus
/// the events stored after them (`src/pipeline/snapshot.rs`). Partitioned by
/// `kafka_partition`; each snapshot replaces the partition's previous one.
pub static SIM_EVENTS_SNAPSHOT: LazyLock<SchemaRef> = LazyLock::new(|| {
    let dropped = ["source", "ingested_at"];
    let mut fields: Vec<Field> = SIM_EVENTS
        .fields()
        .iter()
        .filter(|f| !dropped.contains(&f.name().as_str()))
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("through_seq", DataType::Int64, false));
    fields.push(Field::new("kafka_partition", DataType::Int64, false));
    Arc::new(Schema::new(fields))
});

/// `workspaces`: the history of Workspaces: every accepted `workspace_created`,
/// `workspaces_linked`, `workspace_unlinked`, `sso_enabled` and `sso_disabled` event, in
/// the order they were applied (`seq`).
pub static WORKSPACES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("workspace_id", DataType::Int64, false),
        Field::new("organization_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        // Who made the change (`user:ID`, `operator:NAME`); NULL before events named it.
        Field::new("actor", DataType::Utf8, true),
    ]))
});

/// `memberships`: the history of roles: every accepted `role_granted`, `role_revoked`,
/// `superadmin_assigned` and `default_workspace_set` event, in the order they were applied
/// (`seq`, shared with `workspaces`).
pub static MEMBERSHIPS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("workspace_id", DataType::Int64, true),
        Field::new("organization_id", DataType::Int64, true),
        Field::new("role", DataType::Utf8, true),
        Field::new("seq", DataType::Int64, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("ingested_at", timestamp_type(), false),
        Field::new("actor", DataType::Utf8, true),
    ]))
});

/// `transfer_log`: SIM transfer requests accepted for publishing, and when their events
/// were published. An accepted request without a `published` row is published again (its
/// event ids make the repeat harmless).
pub static TRANSFER_LOG: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("request_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("at", timestamp_type(), false),
        Field::new("user_id", DataType::Utf8, true),
        Field::new("target_workspace_id", DataType::Int64, true),
        Field::new("events", DataType::Utf8, true),
    ]))
});

/// `invoices`: every issued invoice, as its JSON document; never changed once written.
pub static INVOICES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("workspace_id", DataType::Int64, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("invoice_id", DataType::Utf8, false),
        Field::new("issued_at", timestamp_type(), false),
        Field::new("document", DataType::Utf8, false),
    ]))
});

/// `billed_slices`: which issued invoice billed each usage slice, so a slice that reaches a
/// sealed period later is billed once, as an adjustment, and never twice.
pub static BILLED_SLICES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("workspace_id", DataType::Int64, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("record_id", DataType::Int64, false),
        Field::new("slice", DataType::Int16, false),
        Field::new("invoice_id", DataType::Utf8, false),
    ]))
});

/// The rows of `table` (`usage` or `quarantine`, or a view of one) that count: every
/// stored slice except reversals and the slices they cancel. A corrected record then shows
/// only its slices under the ownership known now, exactly as a batch ingest would have
/// written them, so counts of records and slices agree as well as sums. (Sums agree over
/// the stored rows too: a reversal and the slice it cancels add up to zero.)
pub fn counted_slices_sql(table: &str) -> String {
    format!(
        "(SELECT * FROM {table} WHERE reverses_slice IS NULL) AS counted \
         LEFT ANTI JOIN (SELECT record_id AS reversed_record, reverses_slice AS reversed_slice \
         FROM {table} WHERE reverses_slice IS NOT NULL) AS reversed \
         ON counted.record_id = reversed.reversed_record AND counted.slice = reversed.reversed_slice"
    )
}

/// `ownership`: who owned which SIM when, derived from `sim_events` (only accepted events
/// are stored, so the view needs no validation logic). `valid_to` is null while open.
pub const OWNERSHIP_VIEW_SQL: &str = "
SELECT iccid, workspace_id, valid_from, valid_to FROM (
  SELECT iccid,
         COALESCE(target_workspace_id, workspace_id) AS workspace_id,
         event_time AS valid_from,
         LEAD(event_time) OVER (PARTITION BY iccid ORDER BY event_time, seq) AS valid_to
  FROM sim_events
  WHERE event_type IN ('sim_registered', 'sim_transferred')
) WHERE valid_to IS NULL OR valid_to > valid_from";
