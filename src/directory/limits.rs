use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::domain::OrganizationId;

/// How many Workspaces an organization may have (its own and those linked to it): 3, the
/// Pro package, unless an operator configured it otherwise for that organization (Free: 1;
/// more on request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLimits {
    default: usize,
    per_organization: BTreeMap<OrganizationId, usize>,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            default: Self::PRO_PACKAGE,
            per_organization: BTreeMap::new(),
        }
    }
}

impl LinkLimits {
    pub const FREE_PACKAGE: usize = 1;
    pub const PRO_PACKAGE: usize = 3;

    /// No limit at all: for replaying events that were checked when they arrived (a limit
    /// lowered since must not undo them).
    pub fn unbounded() -> Self {
        LinkLimits {
            default: usize::MAX,
            per_organization: BTreeMap::new(),
        }
    }

    pub fn with(mut self, limit: OrganizationLimit) -> Self {
        self.per_organization
            .insert(limit.organization, limit.workspaces);
        self
    }

    pub fn for_organization(&self, organization: OrganizationId) -> usize {
        self.per_organization
            .get(&organization)
            .copied()
            .unwrap_or(self.default)
    }
}

/// `ORG=N`, `ORG=free` or `ORG=pro`: organization ORG may have N Workspaces (1 with the
/// Free package, 3 with Pro).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrganizationLimit {
    pub organization: OrganizationId,
    pub workspaces: usize,
}

impl FromStr for OrganizationLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (organization, workspaces) = s
            .split_once('=')
            .ok_or_else(|| format!("'{s}' is not ORGANIZATION=WORKSPACES, e.g. 7=5"))?;
        Ok(OrganizationLimit {
            organization: organization.parse()?,
            workspaces: match workspaces.trim() {
                "free" => LinkLimits::FREE_PACKAGE,
                "pro" => LinkLimits::PRO_PACKAGE,
                number => number.parse().map_err(|_| {
                    format!("'{workspaces}' is not free, pro or a number of Workspaces (in '{s}')")
                })?,
            },
        })
    }
}

impl fmt::Display for OrganizationLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.organization, self.workspaces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_apply_per_organization() {
        let limit: OrganizationLimit = "7=5".parse().unwrap();
        let limits = LinkLimits::default().with(limit);
        assert_eq!(limits.for_organization(OrganizationId::new(7).unwrap()), 5);
        assert_eq!(limits.for_organization(OrganizationId::new(8).unwrap()), 3);
        let free = LinkLimits::default().with("8=free".parse().unwrap());
        assert_eq!(free.for_organization(OrganizationId::new(8).unwrap()), 1);
        assert_eq!("8=pro".parse::<OrganizationLimit>().unwrap().workspaces, 3);
        assert!("7".parse::<OrganizationLimit>().is_err());
        assert!("0=5".parse::<OrganizationLimit>().is_err());
        assert!("7=x".parse::<OrganizationLimit>().is_err());
    }
}
