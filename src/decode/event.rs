use std::borrow::Cow;

use serde::Deserialize;

use super::{event_instant, parse_object, workspace_field, Reason, Rejection};
use crate::domain::{
    Actor, DeviceId, EventKind, EventType, Iccid, LifecycleEvent, SimStatus, UserId, WorkspaceId,
};

/// All event types share one flat shape; which fields are required depends on `type`.
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    iccid: Cow<'a, str>,
    #[serde(default)]
    workspace_id: Option<i64>,
    #[serde(default)]
    source_workspace_id: Option<i64>,
    #[serde(default)]
    target_workspace_id: Option<i64>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    device_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    actor: Option<WireActor<'a>>,
}

/// `"actor": {"user": "ann"}` or `{"operator": "noc-jo"}`: who made a change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireActor<'a> {
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operator: Option<Cow<'a, str>>,
}

impl WireActor<'_> {
    pub(super) fn parse(&self) -> Result<Actor, Rejection> {
        let invalid = |e: String| Rejection::new(Reason::InvalidField, format!("actor: {e}"));
        match (&self.user, &self.operator) {
            (Some(user), None) => UserId::parse(user).map(Actor::User).map_err(invalid),
            (None, Some(name)) => UserId::parse(name)
                .map(|name| Actor::Operator(name.as_str().to_owned()))
                .map_err(invalid),
            _ => Err(invalid(
                "give exactly one of {\"user\": ID} and {\"operator\": NAME}".to_owned(),
            )),
        }
    }
}

/// Decodes and validates one SIM lifecycle event.
pub fn decode_event(bytes: &[u8]) -> Result<LifecycleEvent, Rejection> {
    let wire: WireEvent = parse_object(bytes)?;
    let at = event_instant(&wire.event_id, &wire.timestamp)?;
    let iccid = Iccid::parse(&wire.iccid)
        .map_err(|e| Rejection::new(Reason::InvalidIccid, format!("iccid: {e}")))?;
    let kind = match EventType::parse(&wire.kind) {
        Some(EventType::Registered) => EventKind::Registered {
            workspace: workspace(wire.workspace_id, "workspace_id")?,
        },
        Some(EventType::Transferred) => EventKind::Transferred {
            source: workspace(wire.source_workspace_id, "source_workspace_id")?,
            target: workspace(wire.target_workspace_id, "target_workspace_id")?,
        },
        Some(EventType::StatusChanged) => {
            let text = wire.status.as_deref().ok_or_else(|| {
                Rejection::new(Reason::MissingField, "missing field `status`".to_owned())
            })?;
            let status = SimStatus::parse(text).ok_or_else(|| {
                Rejection::new(
                    Reason::UnknownStatus,
                    format!("status '{text}' is not one of ISSUED, ACTIVATED, SUSPENDED, FACTORY_TEST, DELETED"),
                )
            })?;
            EventKind::StatusChanged {
                workspace: workspace(wire.workspace_id, "workspace_id")?,
                status,
            }
        }
        Some(EventType::Attached) => EventKind::Attached {
            device: device(wire.device_id.as_deref())?,
        },
        Some(EventType::Detached) => EventKind::Detached {
            device: device(wire.device_id.as_deref())?,
        },
        None => {
            return Err(Rejection::new(
                Reason::UnknownEventType,
                format!(
                    "type '{}' is not a SIM lifecycle or directory event",
                    wire.kind
                ),
            ))
        }
    };
    let actor = wire.actor.as_ref().map(WireActor::parse).transpose()?;
    Ok(LifecycleEvent {
        event_id: wire.event_id.into_owned(),
        at,
        iccid,
        kind,
        actor,
    })
}

fn device(value: Option<&str>) -> Result<DeviceId, Rejection> {
    let text = value.ok_or_else(|| {
        Rejection::new(Reason::MissingField, "missing field `device_id`".to_owned())
    })?;
    DeviceId::parse(text)
        .map_err(|e| Rejection::new(Reason::InvalidField, format!("device_id: {e}")))
}

fn workspace(value: Option<i64>, field: &str) -> Result<WorkspaceId, Rejection> {
    workspace_field(value, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_event_type() {
        let reg = decode_event(br#"{"event_id": "e1", "type": "sim_registered", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117", "workspace_id": 201}"#).unwrap();
        assert_eq!(
            reg.kind,
            EventKind::Registered {
                workspace: WorkspaceId::new(201).unwrap()
            }
        );
        let tr = decode_event(br#"{"event_id": "e2", "type": "sim_transferred", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117", "source_workspace_id": 201, "target_workspace_id": 202}"#).unwrap();
        assert!(matches!(tr.kind, EventKind::Transferred { .. }));
        let st = decode_event(br#"{"event_id": "e3", "type": "sim_status_changed", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117", "workspace_id": 202, "status": "SUSPENDED"}"#).unwrap();
        assert!(matches!(
            st.kind,
            EventKind::StatusChanged {
                status: SimStatus::Suspended,
                ..
            }
        ));
    }

    #[test]
    fn rejects_incomplete_events_with_the_missing_field() {
        let r = decode_event(br#"{"event_id": "e2", "type": "sim_transferred", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117", "source_workspace_id": 201}"#).unwrap_err();
        assert_eq!(r.reason, Reason::MissingField);
        assert!(r.detail.contains("target_workspace_id"));
        let r = decode_event(br#"{"event_id": "e3", "type": "sim_exploded", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117"}"#).unwrap_err();
        assert_eq!(r.reason, Reason::UnknownEventType);
    }
}
