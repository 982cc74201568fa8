//! transfer: SIM transfer requests. A request names SIMs (a list or a range) and a target
//! Workspace; each SIM is checked against its state now (owner, status, device) and the
//! caller's roles, and either every SIM can move, or none does. What a move publishes, in
//! order: `sim_detached` (with `auto_detach_devices`), `sim_transferred`, and for an
//! ACTIVATED SIM `sim_status_changed` to SUSPENDED in the target.

pub mod outbox;
mod state;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use state::{sim_states, SimState};

use crate::domain::{EventType, Iccid, Role, SimStatus, UserId, UtcMillis, WorkspaceId};

/// The most SIMs one request may move.
pub const MAX_SIMS: usize = 500;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[serde(default)]
    pub iccids: Option<Vec<String>>,
    #[serde(default)]
    pub iccid_range: Option<IccidRange>,
    pub target_workspace_id: i64,
    #[serde(default = "default_dry_run")]
    pub dry_run: bool,
    #[serde(default)]
    pub auto_detach_devices: bool,
}

fn default_dry_run() -> bool {
    true
}

/// Every ICCID from `first` to `last`, both included (same length, digits only).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IccidRange {
    pub first: String,
    pub last: String,
}

/// Why a whole request is refused before any SIM is looked at.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
}

impl TransferRequest {
    /// The SIMs the request names, in order, without repeats.
    pub fn iccids(&self) -> Result<Vec<String>, RequestError> {
        let listed = match (&self.iccids, &self.iccid_range) {
            (Some(list), None) => list.clone(),
            (None, Some(range)) => range.expand()?,
            _ => {
                return Err(RequestError::Invalid(
                    "give either iccids (a list) or iccid_range ({first, last})".into(),
                ))
            }
        };
        let mut unique = Vec::new();
        for iccid in listed {
            if !unique.contains(&iccid) {
                unique.push(iccid);
            }
        }
        match unique.len() {
            0 => Err(RequestError::Invalid("no SIMs named".into())),
            n if n > MAX_SIMS => Err(RequestError::Invalid(format!(
                "{n} SIMs named; one request moves at most {MAX_SIMS}"
            ))),
            _ => Ok(unique),
        }
    }

    pub fn target(&self) -> Result<WorkspaceId, RequestError> {
        WorkspaceId::new(self.target_workspace_id).ok_or_else(|| {
            RequestError::Invalid(format!(
                "target_workspace_id {} is not a positive integer",
                self.target_workspace_id
            ))
        })
    }
}

impl IccidRange {
    fn expand(&self) -> Result<Vec<String>, RequestError> {
        let invalid = |why: &str| {
            RequestError::Invalid(format!("iccid_range {}..{}: {why}", self.first, self.last))
        };
        for end in [&self.first, &self.last] {
            Iccid::parse(end).map_err(|e| invalid(&e.to_string()))?;
        }
        if self.first.len() != self.last.len() {
            return Err(invalid("both ends must have the same number of digits"));
        }
        // 22 digits fit in a u128.
        let (first, last): (u128, u128) = match (self.first.parse(), self.last.parse()) {
            (Ok(f), Ok(l)) => (f, l),
            _ => return Err(invalid("not digits")),
        };
        if last < first {
            return Err(invalid("last comes before first"));
        }
        if last - first >= MAX_SIMS as u128 {
            return Err(invalid(&format!("more than {MAX_SIMS} SIMs")));
        }
        let width = self.first.len();
        Ok((first..=last).map(|n| format!("{n:0width$}")).collect())
    }
}

/// What happens, or would happen, to one SIM.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SimPlan {
    pub iccid: String,
    pub source_workspace_id: Option<i64>,
    pub status: Option<&'static str>,
    pub device_id: Option<String>,
    /// The events a move publishes, in order.
    pub events: Vec<EventType>,
    pub error: Option<SimError>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SimError {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: String) -> Option<SimError> {
    Some(SimError { code, message })
}

/// Checks every SIM of a request; `access` is the caller's roles now.
pub fn plan(
    request: &TransferRequest,
    states: &BTreeMap<Iccid, SimState>,
    access: &BTreeMap<WorkspaceId, Role>,
) -> Result<Vec<SimPlan>, RequestError> {
    let target = request.target()?;
    let manages = |w: WorkspaceId| access.get(&w).is_some_and(|r| r.can_manage());
    if !manages(target) {
        return Err(RequestError::Forbidden(format!(
            "moving SIMs into Workspace {target} needs the Administrator or SuperAdmin role there"
        )));
    }
    Ok(request
        .iccids()?
        .into_iter()
        .map(|text| plan_one(text, target, request.auto_detach_devices, states, access))
        .collect())
}

fn plan_one(
    text: String,
    target: WorkspaceId,
    auto_detach: bool,
    states: &BTreeMap<Iccid, SimState>,
    access: &BTreeMap<WorkspaceId, Role>,
) -> SimPlan {
    let mut plan = SimPlan {
        iccid: text.clone(),
        source_workspace_id: None,
        status: None,
        device_id: None,
        events: Vec::new(),
        error: None,
    };
    let Ok(iccid) = Iccid::parse(&text) else {
        plan.error = refuse("invalid_iccid", format!("'{text}' is not 18 to 22 digits"));
        return plan;
    };
    // A SIM of a Workspace the caller cannot see is reported as unknown: its existence is
    // not theirs to learn.
    let state = states
        .get(&iccid)
        .filter(|s| s.owner.is_some_and(|o| access.contains_key(&o)));
    let Some((state, source)) = state.and_then(|s| s.owner.map(|o| (s, o))) else {
        plan.error = refuse("unknown_sim", format!("no SIM {text} in your Workspaces"));
        return plan;
    };
    plan.source_workspace_id = Some(source.get());
    plan.status = Some(state.status.as_str());
    plan.device_id = state.device.as_ref().map(|d| d.to_string());
    plan.error = if !access.get(&source).is_some_and(|r| r.can_manage()) {
        refuse(
            "not_allowed_in_source",
            format!("moving SIMs out of Workspace {source} needs the Administrator or SuperAdmin role there"),
        )
    } else if source == target {
        refuse(
            "already_in_target",
            format!("SIM {text} is already in Workspace {target}"),
        )
    } else if state.status == SimStatus::Deleted {
        refuse(
            "deleted_sim",
            format!("SIM {text} is DELETED and cannot move"),
        )
    } else if let (Some(device), false) = (&state.device, auto_detach) {
        refuse(
            "attached_to_device",
            format!("SIM {text} is in device {device}; set auto_detach_devices to take it out (the device stays in Workspace {source})"),
        )
    } else {
        None
    };
    if plan.error.is_none() {
        if state.device.is_some() {
            plan.events.push(EventType::Detached);
        }
        plan.events.push(EventType::Transferred);
        if state.status == SimStatus::Activated {
            plan.events.push(EventType::StatusChanged);
        }
    }
    plan
}

/// The wire events (key: ICCID) that carry out `plans`, all at `at`, made by `actor` (whose
/// rights ingest checks again).
pub fn events(
    plans: &[SimPlan],
    target: WorkspaceId,
    request_id: &str,
    at: UtcMillis,
    actor: &UserId,
) -> Vec<(String, Vec<u8>)> {
    let timestamp = at.to_string();
    let mut out = Vec::new();
    for plan in plans {
        let Some(source) = plan.source_workspace_id else {
            continue;
        };
        for (n, kind) in plan.events.iter().enumerate() {
            let mut event = serde_json::json!({
                "event_id": format!("transfer-{request_id}-{}-{n}", plan.iccid),
                "type": kind.name(),
                "timestamp": timestamp,
                "iccid": plan.iccid,
                "actor": {"user": actor.as_str()},
            });
            let fields = match kind {
                EventType::Detached => serde_json::json!({"device_id": plan.device_id}),
                EventType::Transferred => serde_json::json!({
                    "source_workspace_id": source,
                    "target_workspace_id": target.get(),
                }),
                _ => serde_json::json!({
                    "workspace_id": target.get(),
                    "status": SimStatus::Suspended.as_str(),
                }),
            };
            if let (Some(event), Some(fields)) = (event.as_object_mut(), fields.as_object()) {
                event.extend(fields.clone());
            }
            out.push((plan.iccid.clone(), event.to_string().into_bytes()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
