use std::fmt;
use std::str::FromStr;

use super::{UtcMillis, WorkspaceId};

/// A main organization: what Workspaces are linked under and what has one SuperAdmin.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OrganizationId(i64);

impl OrganizationId {
    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(OrganizationId(id))
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for OrganizationId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(OrganizationId::new)
            .ok_or_else(|| format!("'{s}' is not an organization id (a positive integer)"))
    }
}

/// A person, as the identity provider names them (the `sub` of their token). One login
/// reaches every Workspace they are invited to.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 255;

    /// 1 to 255 characters, none of them control characters (they would end up in logs
    /// and SQL literals).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.chars().count() > Self::MAX_LEN {
            return Err(format!(
                "a user id has 1 to {} characters, got {}",
                Self::MAX_LEN,
                text.chars().count()
            ));
        }
        if text.chars().any(char::is_control) {
            return Err("a user id cannot contain control characters".to_owned());
        }
        Ok(UserId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's role in one Workspace. `SuperAdmin` is never granted: it follows from being
/// the SuperAdmin of the organization the Workspace is linked to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Role {
    SuperAdmin,
    Administrator,
    User,
    Observer,
}

impl Role {
    /// The roles a `role_granted` event may carry.
    pub const GRANTABLE: [Role; 3] = [Role::Administrator, Role::User, Role::Observer];

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "SuperAdmin" => Role::SuperAdmin,
            "Administrator" => Role::Administrator,
            "User" => Role::User,
            "Observer" => Role::Observer,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "SuperAdmin",
            Role::Administrator => "Administrator",
            Role::User => "User",
            Role::Observer => "Observer",
        }
    }

    /// SuperAdmins and Administrators manage a Workspace (move its SIMs, for one).
    pub fn can_manage(self) -> bool {
        matches!(self, Role::SuperAdmin | Role::Administrator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a change: a person signed in to a Workspace, or the provider's team (operators
/// create, link and unlink Workspaces, reassign SuperAdmins).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Actor {
    User(UserId),
    Operator(String),
}

impl Actor {
    /// As stored in `actor` columns: `user:ann`, `operator:noc-jo`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("user", user)) => UserId::parse(user).map(Actor::User),
            Some(("operator", name)) => UserId::parse(name)
                .map(|name| Actor::Operator(name.as_str().to_owned()))
                .map_err(|e| e.replace("user id", "operator name")),
            _ => Err(format!(
                "'{text}' names no actor (user:ID or operator:NAME)"
            )),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(user) => write!(f, "user:{user}"),
            Actor::Operator(name) => write!(f, "operator:{name}"),
        }
    }
}

/// One change to who may see what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectoryChange {
    WorkspaceCreated {
        workspace: WorkspaceId,
        name: String,
        organization: OrganizationId,
    },
    WorkspacesLinked {
        organization: OrganizationId,
        workspace: WorkspaceId,
    },
    WorkspaceUnlinked {
        organization: OrganizationId,
        workspace: WorkspaceId,
    },
    RoleGranted {
        user: UserId,
        workspace: WorkspaceId,
        role: Role,
    },
    RoleRevoked {
        user: UserId,
        workspace: WorkspaceId,
    },
    SuperadminAssigned {
        organization: OrganizationId,
        user: UserId,
    },
    /// The Workspace a person signs in to (and whose single sign-on they use, if it has it).
    DefaultWorkspaceSet {
        user: UserId,
        workspace: WorkspaceId,
    },
    /// Single sign-on for the people whose default Workspace this is, through the identity
    /// provider of the Workspace's organization.
    SsoSet {
        workspace: WorkspaceId,
        enabled: bool,
    },
}

impl DirectoryChange {
    /// The wire `type` and the `event_type` column.
    pub fn type_name(&self) -> &'static str {
        match self {
            DirectoryChange::WorkspaceCreated { .. } => "workspace_created",
            DirectoryChange::WorkspacesLinked { .. } => "workspaces_linked",
            DirectoryChange::WorkspaceUnlinked { .. } => "workspace_unlinked",
            DirectoryChange::RoleGranted { .. } => "role_granted",
            DirectoryChange::RoleRevoked { .. } => "role_revoked",
            DirectoryChange::SuperadminAssigned { .. } => "superadmin_assigned",
            DirectoryChange::DefaultWorkspaceSet { .. } => "default_workspace_set",
            DirectoryChange::SsoSet { enabled: true, .. } => "sso_enabled",
            DirectoryChange::SsoSet { enabled: false, .. } => "sso_disabled",
        }
    }

    /// Whether the change is kept in the `workspaces` table (else in `memberships`).
    pub fn is_about_workspaces(&self) -> bool {
        matches!(
            self,
            DirectoryChange::WorkspaceCreated { .. }
                | DirectoryChange::WorkspacesLinked { .. }
                | DirectoryChange::WorkspaceUnlinked { .. }
                | DirectoryChange::SsoSet { .. }
        )
    }
}

/// The `type` values of directory events, which share the events topic with SIM events.
pub const DIRECTORY_EVENT_TYPES: [&str; 9] = [
    "workspace_created",
    "workspaces_linked",
    "workspace_unlinked",
    "role_granted",
    "role_revoked",
    "superadmin_assigned",
    "default_workspace_set",
    "sso_enabled",
    "sso_disabled",
];

/// An organization, Workspace or membership event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEvent {
    pub event_id: String,
    pub at: UtcMillis,
    pub change: DirectoryChange,
    /// Who made the change; `None` only for events stored before events named their actor.
    pub actor: Option<Actor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn user_ids_are_short_printable_text(text in "\\PC{0,300}") {
            let ok = !text.is_empty() && text.chars().count() <= UserId::MAX_LEN;
            prop_assert_eq!(UserId::parse(&text).is_ok(), ok);
        }

        #[test]
        fn organization_ids_are_positive(n in any::<i64>()) {
            prop_assert_eq!(OrganizationId::new(n).is_some(), n > 0);
            prop_assert_eq!(n.to_string().parse::<OrganizationId>().is_ok(), n > 0);
        }
    }

    #[test]
    fn actors_read_back_as_written() {
        for text in ["user:ann@example.com", "operator:noc-jo", "user:a:b"] {
            assert_eq!(Actor::parse(text).unwrap().to_string(), text);
        }
        assert!(Actor::parse("ann").is_err());
        assert!(Actor::parse("admin:ann").is_err());
        assert!(Actor::parse("operator:").is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(UserId::parse("alice\n").is_err());
        assert!(UserId::parse("alice@example.com").is_ok());
    }

    #[test]
    fn roles_read_back_as_written() {
        for role in [
            Role::SuperAdmin,
            Role::Administrator,
            Role::User,
            Role::Observer,
        ] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("administrator"), None);
    }

    #[test]
    fn every_change_has_a_listed_type() {
        let ws = WorkspaceId::new(1).unwrap();
        let change = DirectoryChange::RoleRevoked {
            user: UserId::parse("u").unwrap(),
            workspace: ws,
        };
        assert!(DIRECTORY_EVENT_TYPES.contains(&change.type_name()));
    }
}
