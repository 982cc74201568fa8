use std::sync::Arc;

use arrow::array::{Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};

use crate::attribute::SequencedEvent;
use crate::domain::{EventKind, UtcMillis};
use crate::lake::schema;

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
            schema::SIM_EVENTS.clone(),
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
