use std::borrow::Cow;

use serde::Deserialize;

use super::event::WireActor;
use super::{decode_event, event_instant, parse_object, workspace_field, Reason, Rejection};
use crate::domain::{
    Actor, DirectoryChange, DirectoryEvent, LifecycleEvent, OrganizationId, Role, UserId,
    WorkspaceId, DIRECTORY_EVENT_TYPES,
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
    #[serde(borrow, default)]
    actor: Option<WireActor<'a>>,
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
        "default_workspace_set" => DirectoryChange::DefaultWorkspaceSet {
            user: user(wire.user_id.as_deref())?,
            workspace: workspace(wire.workspace_id)?,
        },
        "sso_enabled" | "sso_disabled" => DirectoryChange::SsoSet {
            workspace: workspace(wire.workspace_id)?,
            enabled: wire.kind == "sso_enabled",
        },
        other => {
            return Err(Rejection::new(
                Reason::UnknownEventType,
                format!("type '{other}' is not a directory event"),
            ))
        }
    };
    // Every directory change is checked against the rights of whoever made it.
    let actor = wire
        .actor
        .as_ref()
        .ok_or_else(|| missing("actor"))?
        .parse()?;
    Ok(DirectoryEvent {
        event_id: wire.event_id.into_owned(),
        at,
        change,
        actor: Some(actor),
    })
}

/// The wire form of `event`, as `decode_directory_event` reads it (the API publishes the
/// changes it accepts this way).
pub fn encode_directory_event(event: &DirectoryEvent) -> serde_json::Value {
    use serde_json::json;
    let mut wire = json!({
        "event_id": event.event_id,
        "type": event.change.type_name(),
        "timestamp": event.at.to_string(),
    });
    let fields = match &event.change {
        DirectoryChange::WorkspaceCreated {
            workspace,
            name,
            organization,
        } => {
            json!({"workspace_id": workspace.get(), "name": name, "organization_id": organization.get()})
        }
        DirectoryChange::WorkspacesLinked {
            organization,
            workspace,
        }
        | DirectoryChange::WorkspaceUnlinked {
            organization,
            workspace,
        } => json!({"organization_id": organization.get(), "workspace_id": workspace.get()}),
        DirectoryChange::RoleGranted {
            user,
            workspace,
            role,
        } => {
            json!({"user_id": user.as_str(), "workspace_id": workspace.get(), "role": role.as_str()})
        }
        DirectoryChange::RoleRevoked { user, workspace }
        | DirectoryChange::DefaultWorkspaceSet { user, workspace } => {
            json!({"user_id": user.as_str(), "workspace_id": workspace.get()})
        }
        DirectoryChange::SuperadminAssigned { organization, user } => {
            json!({"organization_id": organization.get(), "user_id": user.as_str()})
        }
        DirectoryChange::SsoSet { workspace, .. } => json!({"workspace_id": workspace.get()}),
    };
    let actor = match &event.actor {
        Some(Actor::User(user)) => Some(json!({"user": user.as_str()})),
        Some(Actor::Operator(name)) => Some(json!({"operator": name})),
        None => None,
    };
    if let (Some(wire), Some(fields)) = (wire.as_object_mut(), fields.as_object()) {
        wire.extend(fields.clone());
        if let Some(actor) = actor {
            wire.insert("actor".to_owned(), actor);
        }
    }
    wire
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
        let created = decode(r#"{"event_id": "d1", "type": "workspace_created", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "name": "Fleet", "organization_id": 7, "actor": {"operator": "noc"}}"#).unwrap();
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
        let r = decode(r#"{"event_id": "d2", "type": "role_granted", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "user_id": "ann", "role": "SuperAdmin", "actor": {"operator": "noc"}}"#).unwrap_err();
        assert_eq!(r.reason, Reason::UnknownRole);
    }

    #[test]
    fn missing_fields_are_named() {
        let r = decode(r#"{"event_id": "d3", "type": "workspaces_linked", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "actor": {"operator": "noc"}}"#).unwrap_err();
        assert_eq!(r.reason, Reason::MissingField);
        assert!(r.detail.contains("organization_id"), "{}", r.detail);
        let r = decode(r#"{"event_id": "d4", "type": "role_revoked", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101, "user_id": "", "actor": {"user": "ann"}}"#).unwrap_err();
        assert_eq!(r.reason, Reason::InvalidField);
    }

    #[test]
    fn encoded_events_decode_to_themselves() {
        let at = crate::domain::UtcMillis::parse_rfc3339("2026-10-01T00:00:00.250Z").unwrap();
        let (ws, org) = (
            WorkspaceId::new(101).unwrap(),
            OrganizationId::new(7).unwrap(),
        );
        let ann = UserId::parse("ann@example.com").unwrap();
        let changes = [
            DirectoryChange::WorkspaceCreated {
                workspace: ws,
                name: "Fleet \"A\"".into(),
                organization: org,
            },
            DirectoryChange::WorkspacesLinked {
                organization: org,
                workspace: ws,
            },
            DirectoryChange::WorkspaceUnlinked {
                organization: org,
                workspace: ws,
            },
            DirectoryChange::RoleGranted {
                user: ann.clone(),
                workspace: ws,
                role: Role::Observer,
            },
            DirectoryChange::RoleRevoked {
                user: ann.clone(),
                workspace: ws,
            },
            DirectoryChange::SuperadminAssigned {
                organization: org,
                user: ann.clone(),
            },
            DirectoryChange::DefaultWorkspaceSet {
                user: ann.clone(),
                workspace: ws,
            },
            DirectoryChange::SsoSet {
                workspace: ws,
                enabled: true,
            },
            DirectoryChange::SsoSet {
                workspace: ws,
                enabled: false,
            },
        ];
        for (n, change) in changes.into_iter().enumerate() {
            let actor = if n % 2 == 0 {
                Actor::Operator("noc".into())
            } else {
                Actor::User(ann.clone())
            };
            let event = DirectoryEvent {
                event_id: format!("api-{n}"),
                at,
                change,
                actor: Some(actor),
            };
            let wire = encode_directory_event(&event).to_string();
            assert_eq!(
                decode_directory_event(wire.as_bytes()).unwrap(),
                event,
                "{wire}"
            );
        }
    }

    #[test]
    fn directory_events_name_their_actor() {
        let line = |actor: &str| {
            format!(
                r#"{{"event_id": "d5", "type": "sso_enabled", "timestamp": "2026-10-01T00:00:00Z", "workspace_id": 101{actor}}}"#
            )
        };
        let r = decode(&line("")).unwrap_err();
        assert_eq!(
            (r.reason, r.detail.as_str()),
            (Reason::MissingField, "missing field `actor`")
        );
        let r = decode(&line(r#", "actor": {"user": "ann", "operator": "noc"}"#)).unwrap_err();
        assert_eq!(r.reason, Reason::InvalidField);
        let r = decode(&line(r#", "actor": {"admin": "ann"}"#)).unwrap_err();
        assert_eq!(r.reason, Reason::InvalidField, "{}", r.detail);
        let IncomingEvent::Directory(event) =
            decode(&line(r#", "actor": {"user": "ann"}"#)).unwrap()
        else {
            panic!("not a directory event")
        };
        assert_eq!(
            event.actor,
            Some(Actor::User(UserId::parse("ann").unwrap()))
        );
        assert_eq!(
            event.change,
            DirectoryChange::SsoSet {
                workspace: WorkspaceId::new(101).unwrap(),
                enabled: true
            }
        );
    }
}
