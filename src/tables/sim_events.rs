//! `sim_events`: every accepted SIM lifecycle event, with its number (`seq`, the order the
//! ownership book replays them in) and where it was read. Its schema, its row builder and
//! its reader.

use std::sync::Arc;

use arrow::array::{Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};

use super::{int, micros, text, value};
use crate::attribute::SequencedEvent;
use crate::domain::{
    DeviceId, EventKind, EventType, Iccid, LifecycleEvent, SimStatus, UtcMillis, WorkspaceId,
};
use crate::lake::{Lake, LakeError, LakeTable};

/// The table's schema (declared with the others in `crate::lake::schema`, which creates
/// the tables).
pub use crate::lake::schema::SIM_EVENTS as SCHEMA;

/// The columns [`read`] needs: `SELECT {COLUMNS} FROM sim_events`.
pub const COLUMNS: &str = "event_id, event_type, event_time, iccid, workspace_id, \
     source_workspace_id, target_workspace_id, status, seq, device_id";

/// Rows of the `sim_events` table.
pub struct EventRows {
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    iccid: StringBuilder,
    workspace_id: Int64Builder,
    source_workspace_id: Int64Builder,
    target_workspace_id: Int64Builder,
    status: StringBuilder,
    seq: Int64Builder,
    source: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    device_id: StringBuilder,
    ingested_at_value: i64,
    len: usize,
}

impl EventRows {
    pub fn new(ingested_at: UtcMillis) -> Self {
        let ts = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
        EventRows {
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            event_time: ts(),
            iccid: StringBuilder::new(),
            workspace_id: Int64Builder::new(),
            source_workspace_id: Int64Builder::new(),
            target_workspace_id: Int64Builder::new(),
            status: StringBuilder::new(),
            seq: Int64Builder::new(),
            source: StringBuilder::new(),
            ingested_at: ts(),
            device_id: StringBuilder::new(),
            ingested_at_value: ingested_at.micros(),
            len: 0,
        }
    }

    pub fn append(&mut self, event: &SequencedEvent, source: &str) {
        let e = &event.event;
        self.event_id.append_value(&e.event_id);
        self.event_type.append_value(e.kind.type_name());
        self.event_time.append_value(e.at.micros());
        self.iccid.append_value(e.iccid.as_str());
        let (workspace, from, to, status) = match &e.kind {
            EventKind::Registered { workspace } => (Some(workspace.get()), None, None, None),
            EventKind::Transferred { source, target } => {
                (None, Some(source.get()), Some(target.get()), None)
            }
            EventKind::StatusChanged { workspace, status } => {
                (Some(workspace.get()), None, None, Some(status.as_str()))
            }
            EventKind::Attached { .. } | EventKind::Detached { .. } => (None, None, None, None),
        };
        self.device_id.append_option(match &e.kind {
            EventKind::Attached { device } | EventKind::Detached { device } => {
                Some(device.as_str())
            }
            _ => None,
        });
        self.workspace_id.append_option(workspace);
        self.source_workspace_id.append_option(from);
        self.target_workspace_id.append_option(to);
        self.status.append_option(status);
        self.seq.append_value(event.seq);
        self.source.append_value(source);
        self.ingested_at.append_value(self.ingested_at_value);
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(&mut self) -> RecordBatch {
        self.len = 0;
        RecordBatch::try_new(
            SCHEMA.clone(),
            vec![
                Arc::new(self.event_id.finish()),
                Arc::new(self.event_type.finish()),
                Arc::new(self.event_time.finish()),
                Arc::new(self.iccid.finish()),
                Arc::new(self.workspace_id.finish()),
                Arc::new(self.source_workspace_id.finish()),
                Arc::new(self.target_workspace_id.finish()),
                Arc::new(self.status.finish()),
                Arc::new(self.seq.finish()),
                Arc::new(self.source.finish()),
                Arc::new(self.ingested_at.finish()),
                Arc::new(self.device_id.finish()),
            ],
        )
        .unwrap_or_else(|e| unreachable!("event builders follow the schema: {e}"))
    }
}

/// Every event the lake holds, as the ownership book needs them.
pub async fn load(lake: &Lake) -> Result<Vec<SequencedEvent>, LakeError> {
    let select = format!("SELECT {COLUMNS} FROM t");
    let batches = lake.select(LakeTable::SimEvents, &select).await?;
    read(&batches).map_err(|detail| LakeError::Corrupt {
        table: LakeTable::SimEvents.name(),
        detail,
    })
}

/// The events in `batches` (rows holding at least [`COLUMNS`], in any order), as the
/// ownership book replays them.
pub fn read(batches: &[RecordBatch]) -> Result<Vec<SequencedEvent>, String> {
    let mut events = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        read_batch(batch, &mut events)?;
    }
    Ok(events)
}

fn read_batch(batch: &RecordBatch, events: &mut Vec<SequencedEvent>) -> Result<(), String> {
    let (ids, types, iccids) = (
        text(batch, "event_id")?,
        text(batch, "event_type")?,
        text(batch, "iccid")?,
    );
    let (statuses, devices) = (text(batch, "status")?, text(batch, "device_id")?);
    let (times, seqs) = (micros(batch, "event_time")?, int(batch, "seq")?);
    let ws = int(batch, "workspace_id")?;
    let (source_ws, target_ws) = (
        int(batch, "source_workspace_id")?,
        int(batch, "target_workspace_id")?,
    );
    let workspace = |column: &arrow::array::Int64Array, row: usize| {
        value(column, row, |c, r| WorkspaceId::new(c.value(r)))
            .flatten()
            .ok_or_else(|| format!("row {row}: missing Workspace"))
    };
    let device = |row: usize| {
        value(&devices, row, |c, r| DeviceId::parse(c.value(r)).ok())
            .flatten()
            .ok_or_else(|| format!("row {row}: missing device"))
    };
    for row in 0..batch.num_rows() {
        let kind = match EventType::parse(types.value(row)) {
            Some(EventType::Registered) => EventKind::Registered {
                workspace: workspace(ws, row)?,
            },
            Some(EventType::Transferred) => EventKind::Transferred {
                source: workspace(source_ws, row)?,
                target: workspace(target_ws, row)?,
            },
            Some(EventType::StatusChanged) => EventKind::StatusChanged {
                workspace: workspace(ws, row)?,
                status: value(&statuses, row, |c, r| SimStatus::parse(c.value(r)))
                    .flatten()
                    .ok_or_else(|| format!("row {row}: unknown status"))?,
            },
            Some(EventType::Attached) => EventKind::Attached {
                device: device(row)?,
            },
            Some(EventType::Detached) => EventKind::Detached {
                device: device(row)?,
            },
            None => {
                return Err(format!(
                    "row {row}: unknown event type {}",
                    types.value(row)
                ))
            }
        };
        events.push(SequencedEvent {
            seq: seqs.value(row),
            event: LifecycleEvent {
                event_id: ids.value(row).to_owned(),
                at: UtcMillis::from_millis(times.value(row).div_euclid(1000)),
                iccid: Iccid::parse(iccids.value(row)).map_err(|e| e.to_string())?,
                kind,
                actor: None,
            },
        });
    }
    Ok(())
}
