use super::{Iccid, UtcMillis, WorkspaceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimStatus {
    Issued,
    Activated,
    Suspended,
    FactoryTest,
    Deleted,
}

impl SimStatus {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ISSUED" => SimStatus::Issued,
            "ACTIVATED" => SimStatus::Activated,
            "SUSPENDED" => SimStatus::Suspended,
            "FACTORY_TEST" => SimStatus::FactoryTest,
            "DELETED" => SimStatus::Deleted,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SimStatus::Issued => "ISSUED",
            SimStatus::Activated => "ACTIVATED",
            SimStatus::Suspended => "SUSPENDED",
            SimStatus::FactoryTest => "FACTORY_TEST",
            SimStatus::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Registered {
        workspace: WorkspaceId,
    },
    Transferred {
        source: WorkspaceId,
        target: WorkspaceId,
    },
    StatusChanged {
        workspace: WorkspaceId,
        status: SimStatus,
    },
}

impl EventKind {
    /// The value of the `event_type` column and of the wire `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Registered { .. } => "sim_registered",
            EventKind::Transferred { .. } => "sim_transferred",
            EventKind::StatusChanged { .. } => "sim_status_changed",
        }
    }
}

/// A SIM lifecycle event. Registrations and transfers move ownership; status changes are
/// kept for billing and reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LifecycleEvent {
    pub event_id: String,
    pub at: UtcMillis,
    pub iccid: Iccid,
    pub kind: EventKind,
}
