use std::collections::BTreeMap;

use crate::attribute::SequencedEvent;
use crate::domain::{DeviceId, EventKind, Iccid, SimStatus, UtcMillis, WorkspaceId};

/// A SIM as it stands at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimState {
    pub owner: Option<WorkspaceId>,
    pub status: SimStatus,
    pub device: Option<DeviceId>,
}

/// Every SIM's state at `at`, from the accepted lifecycle events. A transfer, whoever
/// published it, takes the SIM out of its device and leaves an ACTIVATED SIM SUSPENDED in
/// the target, as billing counts it; a status change counts only from the Workspace that
/// owns the SIM.
pub fn sim_states(events: &[SequencedEvent], at: UtcMillis) -> BTreeMap<Iccid, SimState> {
    let mut ordered: Vec<&SequencedEvent> = events.iter().filter(|e| e.event.at <= at).collect();
    ordered.sort_by_key(|e| (e.event.at, e.seq));
    let mut states: BTreeMap<Iccid, SimState> = BTreeMap::new();
    for stored in ordered {
        let event = &stored.event;
        let state = states.entry(event.iccid).or_insert(SimState {
            owner: None,
            status: SimStatus::Issued,
            device: None,
        });
        match &event.kind {
            EventKind::Registered { workspace } => state.owner = Some(*workspace),
            // Devices are not transferred: the device stays in the source Workspace.
            EventKind::Transferred { target, .. } => {
                state.owner = Some(*target);
                state.device = None;
                if state.status == SimStatus::Activated {
                    state.status = SimStatus::Suspended;
                }
            }
            EventKind::StatusChanged { workspace, status } => {
                if state.owner == Some(*workspace) {
                    state.status = *status;
                }
            }
            EventKind::Attached { device } => state.device = Some(device.clone()),
            EventKind::Detached { .. } => state.device = None,
        }
    }
    states
}
