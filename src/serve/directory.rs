//! Directory management (tag "Workspaces"): invite people, change and revoke their roles,
//! choose a default Workspace, turn single sign-on on or off (Administrators and the
//! SuperAdmin); create, link and unlink Workspaces and assign SuperAdmins (operators).
//!
//! A change is checked against the directory now (the caller's rights, then the rules), so
//! the caller hears at once what would be refused; then it is committed to the lake's
//! outbox and published to the events topic as a directory event naming the caller, like a
//! SIM transfer. It takes effect when ingest applies it, where it is checked again against
//! the directory of that moment: the lake stays the one source of truth, and every replica
//! serves the same directory.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::respond::{json_response, ApiError};
use super::state::{audience_of, ApiState};
use crate::decode::encode_directory_event;
use crate::directory::Directory;
use crate::domain::Reason;
use crate::domain::{
    Actor, DirectoryChange, DirectoryEvent, OrganizationId, Role, UserId, UtcMillis, WorkspaceId,
};
use crate::query::QueryError;
use crate::transfer::outbox;

fn workspace_in_path(text: &str) -> Result<WorkspaceId, ApiError> {
    text.parse::<WorkspaceId>()
        .map_err(|e| ApiError::bad_request(format!("Workspace id in the path: {e}")))
}

fn workspace_id(id: i64) -> Result<WorkspaceId, ApiError> {
    WorkspaceId::new(id).ok_or_else(|| {
        ApiError::bad_request(format!("workspace_id {id} is not a positive integer"))
    })
}

fn organization_in_path(text: &str) -> Result<OrganizationId, ApiError> {
    text.parse::<OrganizationId>()
        .map_err(|e| ApiError::bad_request(format!("organization id in the path: {e}")))
}

fn user_in(text: &str) -> Result<UserId, ApiError> {
    UserId::parse(text).map_err(|e| ApiError::bad_request(format!("user_id: {e}")))
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a Bytes, example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body must be JSON like {example}: {e}")))
}

fn grantable(text: &str) -> Result<Role, ApiError> {
    Role::parse(text)
        .filter(|role| Role::GRANTABLE.contains(role))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "role '{text}' is not one of Administrator, User, Observer"
            ))
        })
}

fn actor_of(caller: &Caller) -> Actor {
    match caller {
        Caller::Member(user) => Actor::User(user.clone()),
        Caller::Operator(name) => Actor::Operator(name.clone()),
    }
}

/// The Workspace a change is about, for the outbox's log.
fn workspace_of(change: &DirectoryChange) -> Option<WorkspaceId> {
    match change {
        DirectoryChange::WorkspaceCreated { workspace, .. }
        | DirectoryChange::WorkspacesLinked { workspace, .. }
        | DirectoryChange::WorkspaceUnlinked { workspace, .. }
        | DirectoryChange::RoleGranted { workspace, .. }
        | DirectoryChange::RoleRevoked { workspace, .. }
        | DirectoryChange::DefaultWorkspaceSet { workspace, .. }
        | DirectoryChange::SsoSet { workspace, .. } => Some(*workspace),
        DirectoryChange::SuperadminAssigned { .. } => None,
    }
}

/// Checks `change` as the caller's against the directory now, and publishes it.
async fn publish(
    state: &ApiState,
    headers: &HeaderMap,
    change: impl FnOnce(&Caller) -> Result<DirectoryChange, ApiError>,
) -> Result<Response, ApiError> {
    let (caller, directory, _, _) = audience_of(state, headers).await?;
    let change = change(&caller)?;
    let actor = actor_of(&caller);
    let event = DirectoryEvent {
        event_id: format!("api-{}", uuid::Uuid::new_v4()),
        at: UtcMillis::now(),
        change,
        actor: Some(actor.clone()),
    };
    Directory::clone(&directory)
        .with_limits(state.link_limits.clone())
        .apply(&event)
        .map_err(|rejection| match rejection.reason {
            Reason::NotAllowed => {
                ApiError::new(StatusCode::FORBIDDEN, "not_allowed", rejection.detail)
            }
            _ => ApiError::new(StatusCode::CONFLICT, "directory_rule", rejection.detail),
        })?;
    let Some(topic) = &state.events_topic else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "events_topic_unavailable",
            "this server publishes no events: start it with --brokers to change the directory",
        ));
    };
    let payload = encode_directory_event(&event).to_string().into_bytes();
    // One key for every directory event, so they share a partition and keep their order.
    let key = crate::kafka::DIRECTORY_KEY.to_owned();
    outbox::accept(
        &state.lake,
        &event.event_id,
        &actor,
        workspace_of(&event.change),
        &[(key, payload)],
    )
    .await
    .map_err(|e| ApiError::from(QueryError::Lake(e)))?;
    tracing::info!(event_id = %event.event_id, change = event.change.type_name(), %actor,
        "directory change accepted");
    let published = match outbox::publish_pending(&state.lake, &topic.brokers, &topic.topic).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(event_id = %event.event_id, "directory change not yet published: {e}");
            false
        }
    };
    Ok(json_response(
        StatusCode::ACCEPTED,
        &json!({
            "event_id": event.event_id,
            "type": event.change.type_name(),
            "published": published,
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkspace {
    workspace_id: i64,
    name: String,
    organization_id: i64,
}

/// `POST /v1/workspaces` (operators).
pub async fn create_workspace(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let new: NewWorkspace = body(
            &bytes,
            r#"{"workspace_id": 105, "name": "Fleet", "organization_id": 1}"#,
        )?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "name must have 1 to 200 printable characters",
            ));
        }
        Ok(DirectoryChange::WorkspaceCreated {
            workspace: workspace_id(new.workspace_id)?,
            name: name.to_owned(),
            organization: OrganizationId::new(new.organization_id).ok_or_else(|| {
                ApiError::bad_request("organization_id is not a positive integer")
            })?,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    workspace_id: i64,
}

/// `POST /v1/organizations/{organization}/workspaces` (operators): links a Workspace.
pub async fn link_workspace(
    State(state): State<Arc<ApiState>>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let link: Link = body(&bytes, r#"{"workspace_id": 105}"#)?;
        Ok(DirectoryChange::WorkspacesLinked {
            organization: organization_in_path(&organization)?,
            workspace: workspace_id(link.workspace_id)?,
        })
    })
    .await
}

/// `DELETE /v1/organizations/{organization}/workspaces/{workspace}` (operators).
pub async fn unlink_workspace(
    State(state): State<Arc<ApiState>>,
    Path((organization, workspace)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        Ok(DirectoryChange::WorkspaceUnlinked {
            organization: organization_in_path(&organization)?,
            workspace: workspace_in_path(&workspace)?,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Superadmin {
    user_id: String,
}

/// `PUT /v1/organizations/{organization}/superadmin` (operators).
pub async fn assign_superadmin(
    State(state): State<Arc<ApiState>>,
    Path(organization): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let assigned: Superadmin = body(&bytes, r#"{"user_id": "sara@example.com"}"#)?;
        Ok(DirectoryChange::SuperadminAssigned {
            organization: organization_in_path(&organization)?,
            user: user_in(&assigned.user_id)?,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invitation {
    user_id: String,
    role: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

/// `POST /v1/workspaces/{workspace}/members`: invites a person with a role.
pub async fn invite(
    State(state): State<Arc<ApiState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let invitation: Invitation =
            body(&bytes, r#"{"user_id": "ivy@example.com", "role": "User"}"#)?;
        Ok(DirectoryChange::RoleGranted {
            user: user_in(&invitation.user_id)?,
            workspace: workspace_in_path(&workspace)?,
            role: grantable(&invitation.role)?,
        })
    })
    .await
}

/// `PUT /v1/workspaces/{workspace}/members/{user}`: changes a member's role.
pub async fn change_role(
    State(state): State<Arc<ApiState>>,
    Path((workspace, user)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let change: RoleChange = body(&bytes, r#"{"role": "Observer"}"#)?;
        Ok(DirectoryChange::RoleGranted {
            user: user_in(&user)?,
            workspace: workspace_in_path(&workspace)?,
            role: grantable(&change.role)?,
        })
    })
    .await
}

/// `DELETE /v1/workspaces/{workspace}/members/{user}`: revokes a member's role.
pub async fn revoke(
    State(state): State<Arc<ApiState>>,
    Path((workspace, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        Ok(DirectoryChange::RoleRevoked {
            user: user_in(&user)?,
            workspace: workspace_in_path(&workspace)?,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sso {
    enabled: bool,
}

/// `PUT /v1/workspaces/{workspace}/sso`: single sign-on on or off for the people whose
/// default Workspace it is (an Administrator whose default it is).
pub async fn set_sso(
    State(state): State<Arc<ApiState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |_| {
        let sso: Sso = body(&bytes, r#"{"enabled": true}"#)?;
        Ok(DirectoryChange::SsoSet {
            workspace: workspace_in_path(&workspace)?,
            enabled: sso.enabled,
        })
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultWorkspace {
    workspace_id: i64,
}

/// `PUT /v1/me/default-workspace`: the Workspace the caller signs in to.
pub async fn set_default_workspace(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    publish(&state, &headers, |caller| {
        let Caller::Member(user) = caller else {
            return Err(ApiError::forbidden(
                "operators have no default Workspace; sign in as a person",
            ));
        };
        let chosen: DefaultWorkspace = body(&bytes, r#"{"workspace_id": 101}"#)?;
        Ok(DirectoryChange::DefaultWorkspaceSet {
            user: user.clone(),
            workspace: workspace_id(chosen.workspace_id)?,
        })
    })
    .await
}

/// `GET /v1/workspaces/{workspace}/members`: who can access it, for those who manage it.
pub async fn list_members(
    State(state): State<Arc<ApiState>>,
    Path(workspace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let workspace = workspace_in_path(&workspace)?;
    let (caller, directory, _, _) = audience_of(&state, &headers).await?;
    if let Caller::Member(user) = &caller {
        if !directory.manages(user, workspace) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_allowed",
                format!(
                    "the members of Workspace {workspace} are listed for its Administrators \
                     and SuperAdmin"
                ),
            ));
        }
    }
    if directory.workspace(workspace).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no Workspace {workspace}"),
        ));
    }
    let members: Vec<_> = directory
        .members(workspace)
        .into_iter()
        .map(|(user, role)| json!({"user_id": user.as_str(), "role": role.as_str()}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"workspace_id": workspace.get(), "members": members}),
    ))
}
