//! directory: organizations, Workspaces and who may see which. Directory events are
//! applied in arrival order; each either changes the directory or is refused with the rule
//! it breaks. Access is always computed from the current state: nothing else decides what
//! a person may read.

mod limits;
mod read;

use std::collections::BTreeMap;

pub use limits::{LinkLimits, OrganizationLimit};
pub use read::{load_directory, StoredDirectory};

use crate::decode::{Reason, Rejection};
use crate::domain::{DirectoryChange, OrganizationId, Role, UserId, WorkspaceId};

/// A Workspace as the directory knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceEntry {
    pub name: String,
    /// The organization that created it.
    pub organization: OrganizationId,
    /// The main organization it is linked under, if any.
    pub linked_to: Option<OrganizationId>,
}

/// Organizations, Workspaces and roles as of the last applied event.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    workspaces: BTreeMap<WorkspaceId, WorkspaceEntry>,
    /// Roles granted in one Workspace (never SuperAdmin). A SuperAdmin's own role in a
    /// Workspace linked to their organization is kept here, untouched, for when it is
    /// unlinked.
    roles: BTreeMap<(UserId, WorkspaceId), Role>,
    superadmins: BTreeMap<OrganizationId, UserId>,
    limits: LinkLimits,
}

fn refuse(detail: String) -> Rejection {
    Rejection::new(Reason::DirectoryRule, detail)
}

impl Directory {
    pub fn new(limits: LinkLimits) -> Self {
        Directory {
            limits,
            ..Directory::default()
        }
    }

    pub fn workspace(&self, id: WorkspaceId) -> Option<&WorkspaceEntry> {
        self.workspaces.get(&id)
    }

    pub fn workspaces(&self) -> impl Iterator<Item = (WorkspaceId, &WorkspaceEntry)> {
        self.workspaces.iter().map(|(id, entry)| (*id, entry))
    }

    /// Every Workspace `user` can access now, with their role in it.
    pub fn access(&self, user: &UserId) -> BTreeMap<WorkspaceId, Role> {
        let mut access: BTreeMap<WorkspaceId, Role> = self
            .roles
            .iter()
            .filter(|((who, _), _)| who == user)
            .map(|((_, workspace), role)| (*workspace, *role))
            .collect();
        for (organization, superadmin) in &self.superadmins {
            if superadmin == user {
                for workspace in self.linked_to(*organization) {
                    access.insert(workspace, Role::SuperAdmin);
                }
            }
        }
        access
    }

    fn linked_to(&self, organization: OrganizationId) -> impl Iterator<Item = WorkspaceId> + '_ {
        self.workspaces
            .iter()
            .filter(move |(_, entry)| entry.linked_to == Some(organization))
            .map(|(id, _)| *id)
    }

    /// The SuperAdmin who owns `workspace` through its link, if any.
    fn covering_superadmin(&self, workspace: WorkspaceId) -> Option<(OrganizationId, &UserId)> {
        let organization = self.workspaces.get(&workspace)?.linked_to?;
        self.superadmins
            .get(&organization)
            .map(|user| (organization, user))
    }

    fn existing(&self, workspace: WorkspaceId) -> Result<&WorkspaceEntry, Rejection> {
        self.workspaces.get(&workspace).ok_or_else(|| {
            refuse(format!(
                "Workspace {workspace} does not exist (no workspace_created event)"
            ))
        })
    }

    /// A SuperAdmin's role in a Workspace linked to their organization follows from the
    /// link and cannot be changed or removed there.
    fn check_not_superadmin_of(
        &self,
        user: &UserId,
        workspace: WorkspaceId,
    ) -> Result<(), Rejection> {
        match self.covering_superadmin(workspace) {
            Some((organization, superadmin)) if superadmin == user => Err(refuse(format!(
                "user {user} is the SuperAdmin of organization {organization}, to which Workspace \
                 {workspace} is linked: their access there cannot be changed or removed"
            ))),
            _ => Ok(()),
        }
    }

    /// Applies one change, or refuses it (leaving the directory as it was) with the rule
    /// it breaks.
    pub fn apply(&mut self, change: &DirectoryChange) -> Result<(), Rejection> {
        match change {
            DirectoryChange::WorkspaceCreated {
                workspace,
                name,
                organization,
            } => {
                if let Some(existing) = self.workspaces.get(workspace) {
                    return Err(refuse(format!(
                        "Workspace {workspace} already exists ('{}', organization {})",
                        existing.name, existing.organization
                    )));
                }
                self.workspaces.insert(
                    *workspace,
                    WorkspaceEntry {
                        name: name.clone(),
                        organization: *organization,
                        linked_to: None,
                    },
                );
            }
            DirectoryChange::WorkspacesLinked {
                organization,
                workspace,
            } => self.link(*organization, *workspace)?,
            DirectoryChange::WorkspaceUnlinked {
                organization,
                workspace,
            } => self.unlink(*organization, *workspace)?,
            DirectoryChange::RoleGranted {
                user,
                workspace,
                role,
            } => {
                self.existing(*workspace)?;
                self.check_not_superadmin_of(user, *workspace)?;
                self.roles.insert((user.clone(), *workspace), *role);
            }
            DirectoryChange::RoleRevoked { user, workspace } => {
                self.existing(*workspace)?;
                self.check_not_superadmin_of(user, *workspace)?;
                if self.roles.remove(&(user.clone(), *workspace)).is_none() {
                    return Err(refuse(format!(
                        "user {user} has no role in Workspace {workspace} to revoke"
                    )));
                }
            }
            DirectoryChange::SuperadminAssigned { organization, user } => {
                // One per organization: assigning another replaces the previous one.
                self.superadmins.insert(*organization, user.clone());
            }
        }
        Ok(())
    }

    fn link(
        &mut self,
        organization: OrganizationId,
        workspace: WorkspaceId,
    ) -> Result<(), Rejection> {
        if let Some(current) = self.existing(workspace)?.linked_to {
            return Err(refuse(format!(
                "Workspace {workspace} is already linked to organization {current}{}",
                if current == organization {
                    ""
                } else {
                    "; unlink it first"
                }
            )));
        }
        let limit = self.limits.for_organization(organization);
        let linked = self.linked_to(organization).count();
        if linked >= limit {
            return Err(refuse(format!(
                "organization {organization} already links {linked} Workspaces, its limit; \
                 raise it with --link-limit {organization}=N"
            )));
        }
        if let Some(entry) = self.workspaces.get_mut(&workspace) {
            entry.linked_to = Some(organization);
        }
        Ok(())
    }

    fn unlink(
        &mut self,
        organization: OrganizationId,
        workspace: WorkspaceId,
    ) -> Result<(), Rejection> {
        if self.existing(workspace)?.linked_to != Some(organization) {
            return Err(refuse(format!(
                "Workspace {workspace} is not linked to organization {organization}"
            )));
        }
        // The SuperAdmin loses the access the link gave; a role they held there of their
        // own becomes Administrator.
        if let Some(superadmin) = self.superadmins.get(&organization) {
            if let Some(role) = self.roles.get_mut(&(superadmin.clone(), workspace)) {
                *role = Role::Administrator;
            }
        }
        if let Some(entry) = self.workspaces.get_mut(&workspace) {
            entry.linked_to = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
