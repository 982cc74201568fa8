use std::fmt;
use std::str::FromStr;

/// A Workspace: the billing and access boundary a SIM belongs to. Always positive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct WorkspaceId(i64);

impl WorkspaceId {
    /// The smallest id (ids are positive).
    pub const MIN: WorkspaceId = WorkspaceId(1);

    pub fn new(id: i64) -> Option<Self> {
        (id > 0).then_some(WorkspaceId(id))
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for WorkspaceId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<i64>()
            .ok()
            .and_then(WorkspaceId::new)
            .ok_or_else(|| format!("'{s}' is not a Workspace id (a positive integer)"))
    }
}

/// The id a usage record carries; the key for de-duplication.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct RecordId(pub i64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn workspace_ids_are_positive(n in any::<i64>()) {
            prop_assert_eq!(WorkspaceId::new(n).is_some(), n > 0);
            prop_assert_eq!(n.to_string().parse::<WorkspaceId>().is_ok(), n > 0);
        }
    }
}
