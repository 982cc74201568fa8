use std::collections::HashSet;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use super::{Directory, LinkLimits};
use crate::domain::{
    DirectoryChange, DirectoryEvent, OrganizationId, Role, UserId, UtcMillis, WorkspaceId,
};
use crate::lake::{utf8_column, Lake, LakeError, LakeTable};

/// The directory as the lake holds it, with what ingest needs to add to it.
pub struct StoredDirectory {
    pub directory: Directory,
    pub event_ids: HashSet<String>,
    pub next_seq: i64,
}

/// Both directory tables read as one column set, so one function turns rows into events.
const WORKSPACE_ROWS: &str = "SELECT event_id, event_type, event_time, workspace_id, \
     organization_id, name, CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS VARCHAR) AS role, seq FROM t";
const MEMBERSHIP_ROWS: &str = "SELECT event_id, event_type, event_time, workspace_id, \
     organization_id, CAST(NULL AS VARCHAR) AS name, user_id, role, seq FROM t";

/// Replays the accepted directory events in the order they were accepted. They were checked
/// when they arrived, so the replay does not apply today's limits to them; `limits` apply
/// to what is added from here on.
pub async fn load_directory(lake: &Lake, limits: LinkLimits) -> Result<StoredDirectory, LakeError> {
    let mut events = Vec::new();
    for (table, sql) in [
        (LakeTable::Workspaces, WORKSPACE_ROWS),
        (LakeTable::Memberships, MEMBERSHIP_ROWS),
    ] {
        for batch in lake.select(table, sql).await? {
            events.extend(
                events_from_batch(&batch).map_err(|detail| LakeError::Corrupt {
                    table: table.name(),
                    detail,
                })?,
            );
        }
    }
    events.sort_by_key(|(seq, _)| *seq);
    let mut directory = Directory::new(LinkLimits::unbounded());
    for (seq, event) in &events {
        if let Err(rejection) = directory.apply(&event.change) {
            tracing::warn!(seq, event_id = %event.event_id, %rejection,
                "a stored directory event no longer applies");
        }
    }
    directory.limits = limits;
    Ok(StoredDirectory {
        directory,
        next_seq: events.last().map_or(0, |(seq, _)| seq + 1),
        event_ids: events.into_iter().map(|(_, e)| e.event_id).collect(),
    })
}

fn events_from_batch(batch: &RecordBatch) -> Result<Vec<(i64, DirectoryEvent)>, String> {
    let int = |i: usize| -> Result<&Int64Array, String> {
        batch
            .column(i)
            .as_primitive_opt::<Int64Type>()
            .ok_or(format!("column {i} is not BIGINT"))
    };
    let (ids, types, names, users, roles) = (
        utf8_column(batch, 0)?,
        utf8_column(batch, 1)?,
        utf8_column(batch, 5)?,
        utf8_column(batch, 6)?,
        utf8_column(batch, 7)?,
    );
    let times = batch
        .column(2)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or("event_time is not a timestamp")?;
    let (workspaces, organizations, seqs) = (int(3)?, int(4)?, int(8)?);
    (0..batch.num_rows())
        .map(|row| {
            let missing = |what: &str| format!("row {row}: no {what}");
            let workspace = || {
                workspaces
                    .is_valid(row)
                    .then(|| WorkspaceId::new(workspaces.value(row)))
                    .flatten()
                    .ok_or_else(|| missing("workspace_id"))
            };
            let organization = || {
                organizations
                    .is_valid(row)
                    .then(|| OrganizationId::new(organizations.value(row)))
                    .flatten()
                    .ok_or_else(|| missing("organization_id"))
            };
            let user = || {
                users
                    .is_valid(row)
                    .then(|| UserId::parse(users.value(row)).ok())
                    .flatten()
                    .ok_or_else(|| missing("user_id"))
            };
            let change = match types.value(row) {
                "workspace_created" => DirectoryChange::WorkspaceCreated {
                    workspace: workspace()?,
                    name: names.value(row).to_owned(),
                    organization: organization()?,
                },
                "workspaces_linked" => DirectoryChange::WorkspacesLinked {
                    organization: organization()?,
                    workspace: workspace()?,
                },
                "workspace_unlinked" => DirectoryChange::WorkspaceUnlinked {
                    organization: organization()?,
                    workspace: workspace()?,
                },
                "role_granted" => DirectoryChange::RoleGranted {
                    user: user()?,
                    workspace: workspace()?,
                    role: Role::parse(roles.value(row)).ok_or_else(|| missing("role"))?,
                },
                "role_revoked" => DirectoryChange::RoleRevoked {
                    user: user()?,
                    workspace: workspace()?,
                },
                "superadmin_assigned" => DirectoryChange::SuperadminAssigned {
                    organization: organization()?,
                    user: user()?,
                },
                other => return Err(format!("row {row}: unknown event type {other}")),
            };
            let event = DirectoryEvent {
                event_id: ids.value(row).to_owned(),
                at: UtcMillis::from_millis(times.value(row).div_euclid(1000)),
                change,
            };
            Ok((seqs.value(row), event))
        })
        .collect()
}
