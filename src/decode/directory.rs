use std::borrow::Cow;

use serde::Deserialize;

use super::{decode_event, event_instant, parse_object, workspace_field, Reason, Rejection};
use crate::domain::{
    DirectoryChange, DirectoryEvent, LifecycleEvent, OrganizationId, Role, UserId, WorkspaceId,
    DIRECTORY_EVENT_TYPES,
};

/// A line of the events topic: SIM lifecycle and directory events travel together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingEvent {
    Sim(LifecycleEvent),
    Directory(DirectoryEvent),
}

#[derive(Deserialize)]
struct EventType<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
}

/// Decodes one line of the events topic, whichever kind of event it is.
pub fn decode_any_event(bytes: &[u8]) -> Result<IncomingEvent, Rejection> {
    let is_directory = serde_json::from_slice::<EventType>(bytes)
        .ok()
        .and_then(|t| t.kind)
        .is_some_and(|kind| DIRECTORY_EVENT_TYPES.contains(&kind.as_ref()));
    if is_directory {
        decode_directory_event(bytes).map(IncomingEvent::Directory)
    } else {
        decode_event(bytes).map(IncomingEvent::Sim)
    }
}

/// All directory events share one flat shape; which fields are required depends on `type`.
#[derive(Deserialize)]
struct WireDirectoryEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(default)]
    workspace_id: Option<i64>,
    #[serde(default)]
    organization_id: Option<i64>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
}

/// Decodes and validates the shape of one directory event; whether it may happen (limits,
/// SuperAdmin rules) is the directory's to decide.
pub fn decode_directory_event(bytes: &[u8]) -> Result<DirectoryEvent, Rejection> {
    let wire: WireDirectoryEvent = parse_object(bytes)?;
    let at = event_instant(&wire.event_id, &wire.timestamp)?;
    let change = match wire.kind.as_ref() {
        "workspace_created" => DirectoryChange::WorkspaceCreated {
            workspace: workspace(wire.workspace_id)?,
            name: workspace_name(wire.name.as_deref())?,
            organization: organization(wire.organization_id)?,
        },
        "workspaces_linked" => DirectoryChange::WorkspacesLinked {
            organization: organization(wire.organization_id)?,
            workspace: workspace(wire.workspace_id)?,
        },
        "workspace_unlinked" => DirectoryChange::WorkspaceUnlinked {
            organization: organization(wire.organization_id)?,
            workspace: workspace(wire.workspace_id)?,
        },
        "role_granted" => DirectoryChange::RoleGranted {
            user: user(wire.user_id.as_deref())?,
            workspace: workspace(wire.workspace_id)?,
            role: grantable_role(wire.role.as_deref())?,
        },
        "role_revoked" => DirectoryChange::RoleRevoked {
            user: user(wire.user_id.as_deref())?,
            workspace: workspace(wire.workspace_id)?,
        },
        "superadmin_assigned" => DirectoryChange::SuperadminAssigned {
            organization: organization(wire.organization_id)?,
            user: user(wire.user_id.as_deref())?,
        },
        other => {
            return Err(Rejection::new(
                Reason::UnknownEventType,
                format!("type '{other}' is not a directory event"),
            ))
        }
    };
    Ok(DirectoryEvent {
        event_id: wire.event_id.into_owned(),
        at,
        change,
    })
}

fn missing(field: &str) -> Rejection {
    Rejection::new(Reason::MissingField, format!("missing field `{field}`"))
}

fn invalid(detail: String) -> Rejection {
    Rejection::new(Reason::InvalidField, detail)
}

fn workspace(value: Option<i64>) -> Result<WorkspaceId, Rejection> {
    workspace_field(value, "workspace_id")
}

fn organization(value: Option<i64>) -> Result<OrganizationId, Rejection> {
    let id = value.ok_or_else(|| missing("organization_id"))?;
    OrganizationId::new(id)
        .ok_or_else(|| invalid(format!("organization_id {id} is not a positive integer")))
}

fn user(value: Option<&str>) -> Result<UserId, Rejection> {
    UserId::parse(value.ok_or_else(|| missing("user_id"))?)
        .map_err(|e| invalid(format!("user_id: {e}")))
}

fn workspace_name(value: Option<&str>) -> Result<String, Rejection> {
    let name = value.ok_or_else(|| missing("name"))?.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name must have 1 to 200 printable characters".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

fn grantable_role(value: Option<&str>) -> Result<Role, Rejection> {
    let text = value.ok_or_else(|| missing("role"))?;
    Role::parse(text)
        .filter(|role| Role::GRANTABLE.contains(role))
        .ok_or_else(|| {
            Rejection::new(
                Reason::UnknownRole,
                format!(
                    "role '{text}' is not one of Administrator, User, Observer \
                     (a SuperAdmin is assigned with superadmin_assigned)"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Result<IncomingEvent, Rejection> {
        decode_any_event(json.as_bytes())
    }

    #[test]
    fn directory_and_sim_events_share_the_topic() {
        let created = decode(r#"{"event_id": "d1", "type": "workspace_created", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "name": "Fleet", "organization_id": 7}"#).unwrap();
        assert!(matches!(
            created,
            IncomingEvent::Directory(DirectoryEvent {
                change: DirectoryChange::WorkspaceCreated { .. },
                ..
            })
        ));
        let sim = decode(r#"{"event_id": "e1", "type": "sim_registered", "timestamp": "2026-10-03T00:00:00Z", "iccid": "8988303000010000117", "workspace_id": 201}"#).unwrap();
        assert!(matches!(sim, IncomingEvent::Sim(_)));
    }

    #[test]
    fn superadmin_is_not_a_grantable_role() {
        let r = decode(r#"{"event_id": "d2", "type": "role_granted", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "user_id": "ann", "role": "SuperAdmin"}"#).unwrap_err();
        assert_eq!(r.reason, Reason::UnknownRole);
    }

    #[test]
    fn missing_fields_are_named() {
        let r = decode(r#"{"event_id": "d3", "type": "workspaces_linked", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101}"#).unwrap_err();
        assert_eq!(r.reason, Reason::MissingField);
        assert!(r.detail.contains("organization_id"), "{}", r.detail);
        let r = decode(r#"{"event_id": "d4", "type": "role_revoked", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "user_id": ""}"#).unwrap_err();
        assert_eq!(r.reason, Reason::InvalidField);
    }
}
