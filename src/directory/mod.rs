//! directory: organizations, Workspaces and who may see which. Directory events are
//! applied in the order of their instants; each is first checked against the rights of
//! the actor it names (`rules`), then either changes the directory or is refused with the
//! rule it breaks. Access is always computed from the current state: nothing else decides
//! what a person may read.

mod limits;
mod read;
mod rules;

use std::collections::BTreeMap;

pub use limits::{LinkLimits, OrganizationLimit};
pub use read::{load_directory, StoredDirectory};

use crate::domain::{
    DirectoryChange, DirectoryEvent, OrganizationId, Role, UserId, UtcMillis, WorkspaceId,
};
use crate::domain::{Reason, Rejection};

/// A Workspace as the directory knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceEntry {
    pub name: String,
    /// The organization that created it.
    pub organization: OrganizationId,
    /// The main organization it is linked under, if any.
    pub linked_to: Option<OrganizationId>,
    /// Whether the people whose default Workspace this is sign in through the identity
    /// provider of its organization.
    pub sso: bool,
}

/// A role someone holds in one Workspace, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    role: Role,
    /// When they were first given a role there (their invitation).
    invited: UtcMillis,
    /// When they became Administrator there (kept while they stay one).
    administrator_since: Option<UtcMillis>,
}

/// Organizations, Workspaces and roles as of the last applied event.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    workspaces: BTreeMap<WorkspaceId, WorkspaceEntry>,
    /// Roles granted in one Workspace (never SuperAdmin). A SuperAdmin's own role in a
    /// Workspace linked to their organization is kept here, untouched, for when it is
    /// unlinked.
    roles: BTreeMap<(UserId, WorkspaceId), Grant>,
    superadmins: BTreeMap<OrganizationId, UserId>,
    /// The default Workspace each person chose (else their first invitation's).
    defaults: BTreeMap<UserId, WorkspaceId>,
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

    /// The same directory, checking what is added from here on against `limits`.
    pub fn with_limits(mut self, limits: LinkLimits) -> Self {
        self.limits = limits;
        self
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
            .roles_of(user)
            .map(|(workspace, grant)| (workspace, grant.role))
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

    fn roles_of<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = (WorkspaceId, Grant)> + 'a {
        self.roles
            .range((user.clone(), WorkspaceId::MIN)..)
            .take_while(move |((who, _), _)| who == user)
            .map(|((_, workspace), grant)| (*workspace, *grant))
    }

    /// Everyone who can access `workspace`, with their role there (the SuperAdmin it is
    /// linked under included).
    pub fn members(&self, workspace: WorkspaceId) -> BTreeMap<UserId, Role> {
        let mut members: BTreeMap<UserId, Role> = self
            .roles
            .iter()
            .filter(|((_, w), _)| *w == workspace)
            .map(|((user, _), grant)| (user.clone(), grant.role))
            .collect();
        if let Some((_, superadmin)) = self.covering_superadmin(workspace) {
            members.insert(superadmin.clone(), Role::SuperAdmin);
        }
        members
    }

    /// The SuperAdmin of `organization`, if it has one.
    pub fn superadmin(&self, organization: OrganizationId) -> Option<&UserId> {
        self.superadmins.get(&organization)
    }

    /// Whether `user` manages `workspace` (its Administrator, or the SuperAdmin it is
    /// linked under): they may move its SIMs and manage its people.
    pub fn manages(&self, user: &UserId, workspace: WorkspaceId) -> bool {
        self.access(user)
            .get(&workspace)
            .is_some_and(|role| role.can_manage())
    }

    /// The Workspace `user` signs in to: the one they chose while they can still reach
    /// it, else the first they were invited to that they can still reach.
    pub fn default_workspace(&self, user: &UserId) -> Option<WorkspaceId> {
        let access = self.access(user);
        if let Some(chosen) = self.defaults.get(user).filter(|w| access.contains_key(w)) {
            return Some(*chosen);
        }
        self.roles_of(user)
            .min_by_key(|(workspace, grant)| (grant.invited, *workspace))
            .map(|(workspace, _)| workspace)
            .or_else(|| access.keys().next().copied())
    }

    /// When `user`'s default Workspace has single sign-on: that Workspace and the
    /// organization whose identity provider they must sign in through.
    pub fn single_sign_on(&self, user: &UserId) -> Option<(WorkspaceId, OrganizationId)> {
        let workspace = self.default_workspace(user)?;
        let entry = self.workspaces.get(&workspace)?;
        entry.sso.then_some((workspace, entry.organization))
    }

    fn linked_to(&self, organization: OrganizationId) -> impl Iterator<Item = WorkspaceId> + '_ {
        self.workspaces
            .iter()
            .filter(move |(_, entry)| entry.linked_to == Some(organization))
            .map(|(id, _)| *id)
    }

    /// The Workspaces an organization has, as its package counts them: those linked to it
    /// and those it created that are not linked elsewhere.
    fn workspaces_of(&self, organization: OrganizationId) -> usize {
        self.workspaces
            .values()
            .filter(|entry| match entry.linked_to {
                Some(main) => main == organization,
                None => entry.organization == organization,
            })
            .count()
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

    /// Applies one event, or refuses it (leaving the directory as it was): with
    /// `not_allowed` when its actor may not make the change, else with the rule it breaks.
    pub fn apply(&mut self, event: &DirectoryEvent) -> Result<(), Rejection> {
        if let Some(actor) = &event.actor {
            self.authorize(actor, &event.change)?;
        }
        self.apply_change(&event.change, event.at)
    }

    fn apply_change(&mut self, change: &DirectoryChange, at: UtcMillis) -> Result<(), Rejection> {
        match change {
            DirectoryChange::WorkspaceCreated {
                workspace,
                name,
                organization,
            } => self.create(*workspace, name, *organization)?,
            DirectoryChange::WorkspacesLinked {
                organization,
                workspace,
            } => self.link(*organization, *workspace)?,
            DirectoryChange::WorkspaceUnlinked {
                organization,
                workspace,
            } => self.unlink(*organization, *workspace, at)?,
            DirectoryChange::RoleGranted {
                user,
                workspace,
                role,
            } => {
                self.existing(*workspace)?;
                self.check_not_superadmin_of(user, *workspace)?;
                self.grant(user, *workspace, *role, at);
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
                self.reassign(*organization, user, at)
            }
            DirectoryChange::DefaultWorkspaceSet { user, workspace } => {
                self.existing(*workspace)?;
                if !self.access(user).contains_key(workspace) {
                    return Err(refuse(format!(
                        "user {user} has no access to Workspace {workspace}, so it cannot be \
                         their default"
                    )));
                }
                self.defaults.insert(user.clone(), *workspace);
            }
            DirectoryChange::SsoSet { workspace, enabled } => {
                self.existing(*workspace)?;
                if let Some(entry) = self.workspaces.get_mut(workspace) {
                    entry.sso = *enabled;
                }
            }
        }
        Ok(())
    }

    fn grant(&mut self, user: &UserId, workspace: WorkspaceId, role: Role, at: UtcMillis) {
        let grant = self
            .roles
            .entry((user.clone(), workspace))
            .or_insert(Grant {
                role,
                invited: at,
                administrator_since: None,
            });
        grant.role = role;
        grant.administrator_since = match role {
            Role::Administrator => Some(grant.administrator_since.unwrap_or(at)),
            _ => None,
        };
    }

    fn create(
        &mut self,
        workspace: WorkspaceId,
        name: &str,
        organization: OrganizationId,
    ) -> Result<(), Rejection> {
        if let Some(existing) = self.workspaces.get(&workspace) {
            return Err(refuse(format!(
                "Workspace {workspace} already exists ('{}', organization {})",
                existing.name, existing.organization
            )));
        }
        self.check_room(organization)?;
        self.workspaces.insert(
            workspace,
            WorkspaceEntry {
                name: name.to_owned(),
                organization,
                linked_to: None,
                sso: false,
            },
        );
        Ok(())
    }

    /// An organization's package limits how many Workspaces it has.
    fn check_room(&self, organization: OrganizationId) -> Result<(), Rejection> {
        let limit = self.limits.for_organization(organization);
        let has = self.workspaces_of(organization);
        if has >= limit {
            return Err(refuse(format!(
                "organization {organization} already has {has} Workspaces, as many as its \
                 package allows ({limit}); an operator raises it with --link-limit \
                 {organization}=N (or {organization}=pro)"
            )));
        }
        Ok(())
    }

    fn link(
        &mut self,
        organization: OrganizationId,
        workspace: WorkspaceId,
    ) -> Result<(), Rejection> {
        let entry = self.existing(workspace)?;
        if let Some(current) = entry.linked_to {
            return Err(refuse(format!(
                "Workspace {workspace} is already linked to organization {current}{}",
                if current == organization {
                    ""
                } else {
                    "; unlink it first"
                }
            )));
        }
        // Its own Workspace is counted already; another's adds one.
        if entry.organization != organization {
            self.check_room(organization)?;
        }
        if let Some(entry) = self.workspaces.get_mut(&workspace) {
            entry.linked_to = Some(organization);
        }
        if !self.superadmins.contains_key(&organization) {
            if let Some(user) = self.longest_standing_administrator(organization) {
                self.superadmins.insert(organization, user);
            }
        }
        Ok(())
    }

    /// The Administrator of the organization's own Workspaces who has been one longest:
    /// the SuperAdmin an organization gets when it first links Workspaces.
    fn longest_standing_administrator(&self, organization: OrganizationId) -> Option<UserId> {
        self.roles
            .iter()
            .filter(|((_, workspace), _)| {
                self.workspaces
                    .get(workspace)
                    .is_some_and(|entry| entry.organization == organization)
            })
            .filter_map(|((user, _), grant)| grant.administrator_since.map(|since| (since, user)))
            .min()
            .map(|(_, user)| user.clone())
    }

    fn unlink(
        &mut self,
        organization: OrganizationId,
        workspace: WorkspaceId,
        at: UtcMillis,
    ) -> Result<(), Rejection> {
        if self.existing(workspace)?.linked_to != Some(organization) {
            return Err(refuse(format!(
                "Workspace {workspace} is not linked to organization {organization}"
            )));
        }
        if let Some(superadmin) = self.superadmins.get(&organization).cloned() {
            self.step_down(&superadmin, organization, workspace, at);
        }
        if let Some(entry) = self.workspaces.get_mut(&workspace) {
            entry.linked_to = None;
        }
        // With nothing linked any more, the SuperAdmin role is no longer needed.
        if self.linked_to(organization).next().is_none() {
            self.superadmins.remove(&organization);
        }
        Ok(())
    }

    /// A SuperAdmin who leaves `workspace` (unlinked, or the role reassigned) becomes its
    /// Administrator if they had access there before the link (a role of their own, or the
    /// Workspace is their organization's own), and loses it otherwise.
    fn step_down(
        &mut self,
        superadmin: &UserId,
        organization: OrganizationId,
        workspace: WorkspaceId,
        at: UtcMillis,
    ) {
        let own = self
            .workspaces
            .get(&workspace)
            .is_some_and(|entry| entry.organization == organization);
        if own || self.roles.contains_key(&(superadmin.clone(), workspace)) {
            self.grant(superadmin, workspace, Role::Administrator, at);
        }
    }

    /// One SuperAdmin per organization: the previous one steps down in every linked
    /// Workspace.
    fn reassign(&mut self, organization: OrganizationId, user: &UserId, at: UtcMillis) {
        if let Some(previous) = self.superadmins.get(&organization).cloned() {
            if &previous != user {
                let linked: Vec<WorkspaceId> = self.linked_to(organization).collect();
                for workspace in linked {
                    self.step_down(&previous, organization, workspace, at);
                }
            }
        }
        self.superadmins.insert(organization, user.clone());
    }
}

#[cfg(test)]
mod tests;
