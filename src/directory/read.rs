use std::collections::HashSet;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimestampMicrosecondType};

use super::{Directory, LinkLimits};
use crate::domain::{
    Actor, DirectoryChange, DirectoryEvent, OrganizationId, Role, UserId, UtcMillis, WorkspaceId,
};
use crate::lake::{Lake, LakeError, LakeTable};

/// The directory as the lake holds it, with what ingest needs to add to it.
pub struct StoredDirectory {
    pub directory: Directory,
    pub event_ids: HashSet<String>,
    pub next_seq: i64,
}

/// Replays the accepted directory events in the order they were accepted. They were checked
/// when they arrived, so the replay does not apply today's limits to them; `limits` apply
/// to what is added from here on.
pub async fn load_directory(lake: &Lake, limits: LinkLimits) -> Result<StoredDirectory, LakeError> {
    let mut events = Vec::new();
    for table in [LakeTable::Workspaces, LakeTable::Memberships] {
        for batch in lake.select(table, "SELECT * FROM t").await? {
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
        if let Err(rejection) = directory.apply(event) {
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

/// The rows of either directory table, read by column name (a column one table lacks, or
/// an older lake, reads as NULL).
fn events_from_batch(batch: &RecordBatch) -> Result<Vec<(i64, DirectoryEvent)>, String> {
    let text = |name: &str| -> Result<Option<StringArray>, String> {
        batch
            .column_by_name(name)
            .map(|c| {
                cast(c, &DataType::Utf8)
                    .map(|c| c.as_string::<i32>().clone())
                    .map_err(|e| format!("{name}: {e}"))
            })
            .transpose()
    };
    let int = |name: &str| -> Result<Option<Int64Array>, String> {
        batch
            .column_by_name(name)
            .map(|c| {
                c.as_primitive_opt::<Int64Type>()
                    .cloned()
                    .ok_or_else(|| format!("{name} is not BIGINT"))
            })
            .transpose()
    };
    let (ids, types) = (text("event_id")?, text("event_type")?);
    let (names, users, roles, actors) = (
        text("name")?,
        text("user_id")?,
        text("role")?,
        text("actor")?,
    );
    let (workspaces, organizations, seqs) =
        (int("workspace_id")?, int("organization_id")?, int("seq")?);
    let (Some(ids), Some(types), Some(seqs)) = (ids, types, seqs) else {
        return Err("no event_id, event_type or seq column".to_owned());
    };
    let times = batch
        .column_by_name("event_time")
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or("event_time is not a timestamp")?;
    let value = |column: &Option<StringArray>, row: usize| {
        column
            .as_ref()
            .filter(|c| c.is_valid(row))
            .map(|c| c.value(row).to_owned())
    };
    let number = |column: &Option<Int64Array>, row: usize| {
        column
            .as_ref()
            .filter(|c| c.is_valid(row))
            .map(|c| c.value(row))
    };
    (0..batch.num_rows())
        .map(|row| {
            let fields = RowFields {
                row,
                workspace: number(&workspaces, row),
                organization: number(&organizations, row),
                name: value(&names, row),
                user: value(&users, row),
                role: value(&roles, row),
            };
            let actor = value(&actors, row)
                .map(|text| Actor::parse(&text))
                .transpose()
                .map_err(|e| format!("row {row}: actor: {e}"))?;
            let event = DirectoryEvent {
                event_id: ids.value(row).to_owned(),
                at: UtcMillis::from_millis(times.value(row).div_euclid(1000)),
                change: fields.change(types.value(row))?,
                actor,
            };
            Ok((seqs.value(row), event))
        })
        .collect()
}

/// The columns of one stored row that say what changed.
struct RowFields {
    row: usize,
    workspace: Option<i64>,
    organization: Option<i64>,
    name: Option<String>,
    user: Option<String>,
    role: Option<String>,
}

impl RowFields {
    fn missing(&self, what: &str) -> String {
        format!("row {}: no {what}", self.row)
    }

    fn workspace(&self) -> Result<WorkspaceId, String> {
        self.workspace
            .and_then(WorkspaceId::new)
            .ok_or_else(|| self.missing("workspace_id"))
    }

    fn organization(&self) -> Result<OrganizationId, String> {
        self.organization
            .and_then(OrganizationId::new)
            .ok_or_else(|| self.missing("organization_id"))
    }

    fn user(&self) -> Result<UserId, String> {
        self.user
            .as_deref()
            .and_then(|user| UserId::parse(user).ok())
            .ok_or_else(|| self.missing("user_id"))
    }

    fn change(&self, event_type: &str) -> Result<DirectoryChange, String> {
        Ok(match event_type {
            "workspace_created" => DirectoryChange::WorkspaceCreated {
                workspace: self.workspace()?,
                name: self.name.clone().unwrap_or_default(),
                organization: self.organization()?,
            },
            "workspaces_linked" => DirectoryChange::WorkspacesLinked {
                organization: self.organization()?,
                workspace: self.workspace()?,
            },
            "workspace_unlinked" => DirectoryChange::WorkspaceUnlinked {
                organization: self.organization()?,
                workspace: self.workspace()?,
            },
            "role_granted" => DirectoryChange::RoleGranted {
                user: self.user()?,
                workspace: self.workspace()?,
                role: (self.role.as_deref())
                    .and_then(Role::parse)
                    .ok_or_else(|| self.missing("role"))?,
            },
            "role_revoked" => DirectoryChange::RoleRevoked {
                user: self.user()?,
                workspace: self.workspace()?,
            },
            "superadmin_assigned" => DirectoryChange::SuperadminAssigned {
                organization: self.organization()?,
                user: self.user()?,
            },
            "default_workspace_set" => DirectoryChange::DefaultWorkspaceSet {
                user: self.user()?,
                workspace: self.workspace()?,
            },
            "sso_enabled" | "sso_disabled" => DirectoryChange::SsoSet {
                workspace: self.workspace()?,
                enabled: event_type == "sso_enabled",
            },
            other => return Err(format!("row {}: unknown event type {other}", self.row)),
        })
    }
}
