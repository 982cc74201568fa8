//! `workspaces` and `memberships`: the directory's history, one row per accepted change,
//! in the order applied (`seq`, shared by the two tables). Read back by `crate::directory`.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};

use crate::directory::Directory;
use crate::domain::{DirectoryChange, DirectoryEvent, UtcMillis};
use crate::lake::schema;

/// The columns both directory tables share, around the ones that differ.
struct Common {
    event_id: StringBuilder,
    event_type: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    seq: Int64Builder,
    source: StringBuilder,
    ingested_at: TimestampMicrosecondBuilder,
    actor: StringBuilder,
    len: usize,
}

impl Common {
    fn new() -> Self {
        Common {
            event_id: StringBuilder::new(),
            event_type: StringBuilder::new(),
            event_time: timestamps(),
            seq: Int64Builder::new(),
            source: StringBuilder::new(),
            ingested_at: timestamps(),
            actor: StringBuilder::new(),
            len: 0,
        }
    }

    fn append(&mut self, event: &DirectoryEvent, seq: i64, source: &str, ingested_at: i64) {
        self.event_id.append_value(&event.event_id);
        self.event_type.append_value(event.change.type_name());
        self.event_time.append_value(event.at.micros());
        self.seq.append_value(seq);
        self.source.append_value(source);
        self.ingested_at.append_value(ingested_at);
        self.actor
            .append_option(event.actor.as_ref().map(ToString::to_string));
        self.len += 1;
    }
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// Rows of the `workspaces` and `memberships` tables: accepted directory events.
pub struct DirectoryRows {
    ingested_at: i64,
    workspaces: Common,
    workspace_id: Int64Builder,
    workspace_organization: Int64Builder,
    name: StringBuilder,
    memberships: Common,
    user_id: StringBuilder,
    membership_workspace: Int64Builder,
    membership_organization: Int64Builder,
    role: StringBuilder,
}

impl DirectoryRows {
    pub fn new(ingested_at: UtcMillis) -> Self {
        DirectoryRows {
            ingested_at: ingested_at.micros(),
            workspaces: Common::new(),
            workspace_id: Int64Builder::new(),
            workspace_organization: Int64Builder::new(),
            name: StringBuilder::new(),
            memberships: Common::new(),
            user_id: StringBuilder::new(),
            membership_workspace: Int64Builder::new(),
            membership_organization: Int64Builder::new(),
            role: StringBuilder::new(),
        }
    }

    /// Appends an event `directory` has just accepted (it names the organization of a
    /// Workspace whose single sign-on changes).
    pub fn append(
        &mut self,
        event: &DirectoryEvent,
        seq: i64,
        source: &str,
        directory: &Directory,
    ) {
        use DirectoryChange as C;
        let at = self.ingested_at;
        match &event.change {
            C::WorkspaceCreated {
                workspace,
                name,
                organization,
            } => {
                self.workspaces.append(event, seq, source, at);
                self.workspace_id.append_value(workspace.get());
                self.workspace_organization.append_value(organization.get());
                self.name.append_value(name);
            }
            C::WorkspacesLinked {
                organization,
                workspace,
            }
            | C::WorkspaceUnlinked {
                organization,
                workspace,
            } => {
                self.workspaces.append(event, seq, source, at);
                self.workspace_id.append_value(workspace.get());
                self.workspace_organization.append_value(organization.get());
                self.name.append_null();
            }
            C::RoleGranted {
                user,
                workspace,
                role,
            } => {
                self.memberships.append(event, seq, source, at);
                self.user_id.append_value(user.as_str());
                self.membership_workspace.append_value(workspace.get());
                self.membership_organization.append_null();
                self.role.append_value(role.as_str());
            }
            C::RoleRevoked { user, workspace } => {
                self.memberships.append(event, seq, source, at);
                self.user_id.append_value(user.as_str());
                self.membership_workspace.append_value(workspace.get());
                self.membership_organization.append_null();
                self.role.append_null();
            }
            C::SuperadminAssigned { organization, user } => {
                self.memberships.append(event, seq, source, at);
                self.user_id.append_value(user.as_str());
                self.membership_workspace.append_null();
                self.membership_organization
                    .append_value(organization.get());
                self.role
                    .append_value(crate::domain::Role::SuperAdmin.as_str());
            }
            C::DefaultWorkspaceSet { user, workspace } => {
                self.memberships.append(event, seq, source, at);
                self.user_id.append_value(user.as_str());
                self.membership_workspace.append_value(workspace.get());
                self.membership_organization.append_null();
                self.role.append_null();
            }
            C::SsoSet { workspace, .. } => {
                self.workspaces.append(event, seq, source, at);
                self.workspace_id.append_value(workspace.get());
                match directory.workspace(*workspace) {
                    Some(entry) => self
                        .workspace_organization
                        .append_value(entry.organization.get()),
                    None => unreachable!("single sign-on was set for an existing Workspace"),
                }
                self.name.append_null();
            }
        }
    }

    pub fn workspace_rows(&self) -> usize {
        self.workspaces.len
    }

    pub fn membership_rows(&self) -> usize {
        self.memberships.len
    }

    /// The `workspaces` batch, then the `memberships` batch.
    pub fn finish(mut self) -> (RecordBatch, RecordBatch) {
        let w = &mut self.workspaces;
        let workspaces: Vec<ArrayRef> = vec![
            Arc::new(w.event_id.finish()),
            Arc::new(w.event_type.finish()),
            Arc::new(w.event_time.finish()),
            Arc::new(self.workspace_id.finish()),
            Arc::new(self.workspace_organization.finish()),
            Arc::new(self.name.finish()),
            Arc::new(w.seq.finish()),
            Arc::new(w.source.finish()),
            Arc::new(w.ingested_at.finish()),
            Arc::new(w.actor.finish()),
        ];
        let m = &mut self.memberships;
        let memberships: Vec<ArrayRef> = vec![
            Arc::new(m.event_id.finish()),
            Arc::new(m.event_type.finish()),
            Arc::new(m.event_time.finish()),
            Arc::new(self.user_id.finish()),
            Arc::new(self.membership_workspace.finish()),
            Arc::new(self.membership_organization.finish()),
            Arc::new(self.role.finish()),
            Arc::new(m.seq.finish()),
            Arc::new(m.source.finish()),
            Arc::new(m.ingested_at.finish()),
            Arc::new(m.actor.finish()),
        ];
        let batch = |schema: &arrow::datatypes::SchemaRef, columns| {
            RecordBatch::try_new(schema.clone(), columns)
                .unwrap_or_else(|e| unreachable!("directory builders follow the schema: {e}"))
        };
        (
            batch(&schema::WORKSPACES, workspaces),
            batch(&schema::MEMBERSHIPS, memberships),
        )
    }
}
