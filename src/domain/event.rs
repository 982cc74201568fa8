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

/// The device a SIM is attached to, as the connectivity platform names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(text: &str) -> Result<Self, String> {
        let length = text.chars().count();
        if length == 0 || length > Self::MAX_LEN || text.chars().any(char::is_control) {
            return Err(format!(
                "a device id has 1 to {} printable characters",
                Self::MAX_LEN
            ));
        }
        Ok(DeviceId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    /// The SIM was put into a device (the device belongs to the SIM's Workspace).
    Attached {
        device: DeviceId,
    },
    /// The SIM was taken out of a device, which stays where it is.
    Detached {
        device: DeviceId,
    },
}

impl EventKind {
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::Registered { .. } => EventType::Registered,
            EventKind::Transferred { .. } => EventType::Transferred,
            EventKind::StatusChanged { .. } => EventType::StatusChanged,
            EventKind::Attached { .. } => EventType::Attached,
            EventKind::Detached { .. } => EventType::Detached,
        }
    }

    /// The value of the `event_type` column and of the wire `type` field.
    pub fn type_name(&self) -> &'static str {
        self.event_type().name()
    }
}

/// The kinds of SIM lifecycle event by name: the wire `type` field and the `event_type`
/// column are read and written through this one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(into = "&'static str")]
pub enum EventType {
    Registered,
    Transferred,
    StatusChanged,
    Attached,
    Detached,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::Registered,
        EventType::Transferred,
        EventType::StatusChanged,
        EventType::Attached,
        EventType::Detached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventType::Registered => "sim_registered",
            EventType::Transferred => "sim_transferred",
            EventType::StatusChanged => "sim_status_changed",
            EventType::Attached => "sim_attached",
            EventType::Detached => "sim_detached",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl From<EventType> for &'static str {
    fn from(t: EventType) -> Self {
        t.name()
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
    /// Who asked for it, when a person or operator did (a transfer is then checked against
    /// their roles); `None` for the connectivity platform's own records.
    pub actor: Option<super::Actor>,
}
