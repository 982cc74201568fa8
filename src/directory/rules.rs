//! Who may make which change. Operators (the provider's team) may make any; a person may
//! manage the people of the Workspaces they manage, choose their own default Workspace,
//! turn single sign-on on or off for it if they administer it, and move SIMs between two
//! Workspaces they manage. Everything else is refused with `not_allowed` and the rule.

use super::Directory;
use crate::domain::{Actor, DirectoryChange, UserId, WorkspaceId};
use crate::domain::{Reason, Rejection};

fn not_allowed(detail: String) -> Rejection {
    Rejection::new(Reason::NotAllowed, detail)
}

impl Directory {
    /// Whether `actor` may make `change` now (before it is applied).
    pub fn authorize(&self, actor: &Actor, change: &DirectoryChange) -> Result<(), Rejection> {
        let Actor::User(user) = actor else {
            return Ok(());
        };
        match change {
            DirectoryChange::WorkspaceCreated { .. }
            | DirectoryChange::WorkspacesLinked { .. }
            | DirectoryChange::WorkspaceUnlinked { .. }
            | DirectoryChange::SuperadminAssigned { .. } => Err(not_allowed(format!(
                "{} is the provider's to do (an operator), not user {user}'s",
                change.type_name()
            ))),
            DirectoryChange::RoleGranted { workspace, .. }
            | DirectoryChange::RoleRevoked { workspace, .. } => {
                self.require_manager(user, *workspace)
            }
            DirectoryChange::DefaultWorkspaceSet {
                user: whose,
                workspace: _,
            } => {
                if whose == user {
                    Ok(())
                } else {
                    Err(not_allowed(format!(
                        "user {user} may choose only their own default Workspace, not {whose}'s"
                    )))
                }
            }
            DirectoryChange::SsoSet { workspace, .. } => {
                self.require_manager(user, *workspace)?;
                if self.default_workspace(user) == Some(*workspace) {
                    Ok(())
                } else {
                    Err(not_allowed(format!(
                        "single sign-on is set by an Administrator for their default \
                         Workspace; Workspace {workspace} is not user {user}'s default"
                    )))
                }
            }
        }
    }

    /// Whether `actor` may move a SIM from `source` to `target`: an operator, or a person
    /// who manages both (Administrator or SuperAdmin).
    pub fn authorize_transfer(
        &self,
        actor: &Actor,
        source: WorkspaceId,
        target: WorkspaceId,
    ) -> Result<(), Rejection> {
        let Actor::User(user) = actor else {
            return Ok(());
        };
        for workspace in [source, target] {
            if !self.manages(user, workspace) {
                return Err(not_allowed(format!(
                    "moving a SIM takes the Administrator or SuperAdmin role in both \
                     Workspaces; user {user} has neither in Workspace {workspace}"
                )));
            }
        }
        Ok(())
    }

    fn require_manager(&self, user: &UserId, workspace: WorkspaceId) -> Result<(), Rejection> {
        if self.manages(user, workspace) {
            Ok(())
        } else {
            Err(not_allowed(format!(
                "user {user} is neither an Administrator of Workspace {workspace} nor the \
                 SuperAdmin of the organization it is linked to"
            )))
        }
    }
}
