use super::*;
use crate::decode::decode_event;
use crate::domain::{DeviceId, EventKind};

fn ws(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

const IDLE: &str = "898830300000000001";
const ACTIVE: &str = "898830300000000002";
const IN_DEVICE: &str = "898830300000000003";
const DELETED: &str = "898830300000000004";
const ELSEWHERE: &str = "898830300000000005";
const OBSERVED: &str = "898830300000000006";

/// SIMs of 101 (one each: idle, active, in a device, deleted), one of 301 (which the caller
/// cannot see) and one of 401 (which the caller only observes).
fn states() -> BTreeMap<Iccid, SimState> {
    let state = |owner: i64, status, device: Option<&str>| SimState {
        owner: Some(ws(owner)),
        status,
        device: device.map(|d| DeviceId::parse(d).unwrap()),
    };
    [
        (IDLE, state(101, SimStatus::Issued, None)),
        (ACTIVE, state(101, SimStatus::Activated, None)),
        (
            IN_DEVICE,
            state(101, SimStatus::Suspended, Some("tracker-7")),
        ),
        (DELETED, state(101, SimStatus::Deleted, None)),
        (ELSEWHERE, state(301, SimStatus::Issued, None)),
        (OBSERVED, state(401, SimStatus::Issued, None)),
    ]
    .into_iter()
    .map(|(iccid, s)| (Iccid::parse(iccid).unwrap(), s))
    .collect()
}

/// Administrator of 101 and 102, Observer of 103 and 401.
fn access() -> BTreeMap<WorkspaceId, Role> {
    [
        (ws(101), Role::Administrator),
        (ws(102), Role::SuperAdmin),
        (ws(103), Role::Observer),
        (ws(401), Role::Observer),
    ]
    .into_iter()
    .collect()
}

fn request(iccids: &[&str], target: i64, auto_detach: bool) -> TransferRequest {
    TransferRequest {
        iccids: Some(iccids.iter().map(|s| s.to_string()).collect()),
        iccid_range: None,
        target_workspace_id: target,
        dry_run: true,
        auto_detach_devices: auto_detach,
    }
}

fn one(iccid: &str, target: i64, auto_detach: bool) -> SimPlan {
    let plans = plan(
        &request(&[iccid], target, auto_detach),
        &states(),
        &access(),
    )
    .unwrap();
    plans.into_iter().next().unwrap()
}

fn code(plan: &SimPlan) -> Option<&'static str> {
    plan.error.as_ref().map(|e| e.code)
}

#[test]
fn the_caller_must_manage_the_target() {
    let refused = plan(&request(&[IDLE], 103, false), &states(), &access());
    assert!(matches!(refused, Err(RequestError::Forbidden(_))));
    let refused = plan(&request(&[IDLE], 999, false), &states(), &access());
    assert!(matches!(refused, Err(RequestError::Forbidden(_))));
}

#[test]
fn the_caller_must_manage_the_source() {
    assert_eq!(
        code(&one(OBSERVED, 102, false)),
        Some("not_allowed_in_source")
    );
}

#[test]
fn sims_of_workspaces_the_caller_cannot_see_are_unknown() {
    let plan = one(ELSEWHERE, 102, false);
    assert_eq!(code(&plan), Some("unknown_sim"));
    assert_eq!(plan.source_workspace_id, None, "the owner is not revealed");
    assert_eq!(
        code(&one("898830300000009999", 102, false)),
        Some("unknown_sim")
    );
    assert_eq!(code(&one("12345", 102, false)), Some("invalid_iccid"));
}

#[test]
fn deleted_sims_cannot_move() {
    assert_eq!(code(&one(DELETED, 102, false)), Some("deleted_sim"));
}

#[test]
fn a_sim_in_a_device_moves_only_with_auto_detach() {
    let refused = one(IN_DEVICE, 102, false);
    assert_eq!(code(&refused), Some("attached_to_device"));
    assert!(refused.error.unwrap().message.contains("tracker-7"));
    let moved = one(IN_DEVICE, 102, true);
    assert_eq!(moved.error, None);
    assert_eq!(moved.events, [EventType::Detached, EventType::Transferred]);
}

#[test]
fn an_activated_sim_arrives_suspended() {
    let moved = one(ACTIVE, 102, false);
    assert_eq!(
        moved.events,
        [EventType::Transferred, EventType::StatusChanged]
    );
    let idle = one(IDLE, 102, false);
    assert_eq!(idle.events, [EventType::Transferred]);
    assert_eq!(code(&one(IDLE, 101, false)), Some("already_in_target"));
}

#[test]
fn the_published_events_decode_and_say_what_the_plan_says() {
    let plans = plan(
        &request(&[IN_DEVICE, ACTIVE], 102, true),
        &states(),
        &access(),
    )
    .unwrap();
    let at = UtcMillis::parse_rfc3339("2026-11-28T12:00:00Z").unwrap();
    let wire = events(&plans, ws(102), "r1", at, &UserId::parse("adam").unwrap());
    let decoded: Vec<_> = wire
        .iter()
        .map(|(key, payload)| (key.clone(), decode_event(payload).unwrap()))
        .collect();
    let kinds: Vec<&str> = decoded.iter().map(|(_, e)| e.kind.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "sim_detached",
            "sim_transferred",
            "sim_transferred",
            "sim_status_changed"
        ]
    );
    assert!(decoded
        .iter()
        .all(|(key, e)| *key == e.iccid.to_string() && e.at == at));
    assert!(matches!(
        decoded[3].1.kind,
        EventKind::StatusChanged {
            status: SimStatus::Suspended,
            ..
        }
    ));
    let ids: std::collections::HashSet<_> = decoded.iter().map(|(_, e)| &e.event_id).collect();
    assert_eq!(ids.len(), 4, "every event has its own id");
}

#[test]
fn ranges_expand_within_the_limit() {
    let mut request = request(&[], 102, false);
    request.iccids = None;
    request.iccid_range = Some(IccidRange {
        first: "898830300000000008".into(),
        last: "898830300000000011".into(),
    });
    assert_eq!(
        request.iccids().unwrap(),
        [
            "898830300000000008",
            "898830300000000009",
            "898830300000000010",
            "898830300000000011"
        ]
    );
    for (first, last) in [
        ("898830300000000011", "898830300000000008"),
        ("898830300000000000", "898830300000001000"),
        ("898830300000000000", "8988303000000000001"),
    ] {
        request.iccid_range = Some(IccidRange {
            first: first.into(),
            last: last.into(),
        });
        assert!(request.iccids().is_err(), "{first}..{last}");
    }
    request.iccids = Some(vec![IDLE.into()]);
    assert!(request.iccids().is_err(), "a list and a range at once");
}

#[test]
fn at_most_500_sims_and_dry_run_by_default() {
    let many: Vec<String> = (0..501).map(|n| format!("8988303000000{n:05}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(request(&refs, 102, false).iccids().is_err());
    let parsed: TransferRequest =
        serde_json::from_str(r#"{"iccids": ["898830300000000001"], "target_workspace_id": 102}"#)
            .unwrap();
    assert!(parsed.dry_run);
    assert!(!parsed.auto_detach_devices);
}

#[test]
fn state_follows_the_events_in_time_order() {
    use crate::attribute::SequencedEvent;
    use crate::domain::LifecycleEvent;
    let iccid = Iccid::parse(ACTIVE).unwrap();
    let at = |s: &str| UtcMillis::parse_rfc3339(s).unwrap();
    let event = |seq, when: &str, kind| SequencedEvent {
        seq,
        event: LifecycleEvent {
            event_id: format!("e{seq}"),
            at: at(when),
            iccid,
            kind,
            actor: None,
        },
    };
    let device = DeviceId::parse("d1").unwrap();
    let events = vec![
        event(
            0,
            "2026-11-01T00:00:00Z",
            EventKind::Registered { workspace: ws(101) },
        ),
        event(
            1,
            "2026-11-02T00:00:00Z",
            EventKind::StatusChanged {
                workspace: ws(101),
                status: SimStatus::Activated,
            },
        ),
        event(
            2,
            "2026-11-03T00:00:00Z",
            EventKind::Attached {
                device: device.clone(),
            },
        ),
        // A status from a Workspace that does not own the SIM changes nothing.
        event(
            3,
            "2026-11-04T00:00:00Z",
            EventKind::StatusChanged {
                workspace: ws(102),
                status: SimStatus::Deleted,
            },
        ),
        event(4, "2026-11-05T00:00:00Z", EventKind::Detached { device }),
        event(
            5,
            "2026-11-06T00:00:00Z",
            EventKind::Transferred {
                source: ws(101),
                target: ws(102),
            },
        ),
    ];
    let on = |when| sim_states(&events, at(when))[&iccid].clone();
    assert_eq!(on("2026-11-04T12:00:00Z").status, SimStatus::Activated);
    assert!(on("2026-11-04T12:00:00Z").device.is_some());
    let after = on("2026-11-07T00:00:00Z");
    assert_eq!(
        (after.owner, after.status, after.device),
        (Some(ws(102)), SimStatus::Suspended, None)
    );
    // A transfer published without a detach (another system's event) still leaves the
    // device behind in the source.
    let mut carried = events[..4].to_vec();
    carried.push(event(
        5,
        "2026-11-06T00:00:00Z",
        EventKind::Transferred {
            source: ws(101),
            target: ws(102),
        },
    ));
    let moved = sim_states(&carried, at("2026-11-07T00:00:00Z"))[&iccid].clone();
    assert_eq!(
        (moved.owner, moved.status, moved.device),
        (Some(ws(102)), SimStatus::Suspended, None)
    );
}
