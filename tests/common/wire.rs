//! Wire-format lines (NDJSON) for tests: usage records and lifecycle events.

pub fn usage(id: u64, iccid: &str, start: &str, end: &str, cost: &str) -> String {
    format!(
        r#"{{"id": {id}, "traffic_type": {{"id": 5, "description": "Data"}}, "start_timestamp": "{start}", "end_timestamp": "{end}", "sim": {{"iccid": "{iccid}"}}, "operator": {{"name": "Vodafone", "mnc": "01", "country": {{"mcc": "262", "name": "Germany"}}}}, "volume": {{"rx": 1.0, "tx": 1.0, "total": 2.0}}, "cost": {cost}, "currency": {{"code": "EUR"}}}}"#
    )
}

/// A data record of `mb` MB (rx only).
pub fn data_usage(id: u64, iccid: &str, start: &str, end: &str, mb: &str, cost: &str) -> String {
    format!(
        r#"{{"id": {id}, "traffic_type": {{"id": 5, "description": "Data"}}, "start_timestamp": "{start}", "end_timestamp": "{end}", "sim": {{"iccid": "{iccid}"}}, "operator": {{"name": "Vodafone", "mnc": "01", "country": {{"mcc": "262", "name": "Germany"}}}}, "volume": {{"rx": {mb}, "tx": 0, "total": {mb}}}, "cost": {cost}, "currency": {{"code": "EUR"}}}}"#
    )
}

pub fn registered(id: &str, at: &str, iccid: &str, workspace: i64) -> String {
    format!(
        r#"{{"event_id": "{id}", "type": "sim_registered", "timestamp": "{at}", "iccid": "{iccid}", "workspace_id": {workspace}}}"#
    )
}

pub fn transferred(id: &str, at: &str, iccid: &str, source: i64, target: i64) -> String {
    format!(
        r#"{{"event_id": "{id}", "type": "sim_transferred", "timestamp": "{at}", "iccid": "{iccid}", "source_workspace_id": {source}, "target_workspace_id": {target}}}"#
    )
}

pub fn status(id: &str, at: &str, iccid: &str, workspace: i64, status: &str) -> String {
    format!(
        r#"{{"event_id": "{id}", "type": "sim_status_changed", "timestamp": "{at}", "iccid": "{iccid}", "workspace_id": {workspace}, "status": "{status}"}}"#
    )
}

/// A directory event made by an operator (see `by` for one a person makes).
fn directory_event(id: &str, at: &str, kind: &str, fields: &str) -> String {
    format!(
        r#"{{"event_id": "{id}", "type": "{kind}", "timestamp": "{at}", {fields}, "actor": {OPERATOR}}}"#
    )
}

const OPERATOR: &str = r#"{"operator": "noc"}"#;

/// The same event made by the person `user` instead (an event without an actor gets one).
pub fn by(line: &str, user: &str) -> String {
    let actor = format!(r#"{{"user": "{user}"}}"#);
    match line.contains(OPERATOR) {
        true => line.replace(OPERATOR, &actor),
        false => format!(
            r#"{}, "actor": {actor}}}"#,
            line.strip_suffix('}').unwrap_or(line)
        ),
    }
}

pub fn default_workspace(id: &str, at: &str, user: &str, workspace: i64) -> String {
    let fields = format!(r#""user_id": "{user}", "workspace_id": {workspace}"#);
    directory_event(id, at, "default_workspace_set", &fields)
}

pub fn sso(id: &str, at: &str, workspace: i64, enabled: bool) -> String {
    let kind = if enabled {
        "sso_enabled"
    } else {
        "sso_disabled"
    };
    directory_event(id, at, kind, &format!(r#""workspace_id": {workspace}"#))
}

pub fn workspace_created(id: &str, at: &str, workspace: i64, organization: i64) -> String {
    let fields = format!(
        r#""workspace_id": {workspace}, "name": "Workspace {workspace}", "organization_id": {organization}"#
    );
    directory_event(id, at, "workspace_created", &fields)
}

pub fn linked(id: &str, at: &str, organization: i64, workspace: i64) -> String {
    let fields = format!(r#""organization_id": {organization}, "workspace_id": {workspace}"#);
    directory_event(id, at, "workspaces_linked", &fields)
}

pub fn unlinked(id: &str, at: &str, organization: i64, workspace: i64) -> String {
    let fields = format!(r#""organization_id": {organization}, "workspace_id": {workspace}"#);
    directory_event(id, at, "workspace_unlinked", &fields)
}

pub fn granted(id: &str, at: &str, user: &str, workspace: i64, role: &str) -> String {
    let fields = format!(r#""user_id": "{user}", "workspace_id": {workspace}, "role": "{role}""#);
    directory_event(id, at, "role_granted", &fields)
}

pub fn revoked(id: &str, at: &str, user: &str, workspace: i64) -> String {
    let fields = format!(r#""user_id": "{user}", "workspace_id": {workspace}"#);
    directory_event(id, at, "role_revoked", &fields)
}

pub fn superadmin(id: &str, at: &str, organization: i64, user: &str) -> String {
    let fields = format!(r#""organization_id": {organization}, "user_id": "{user}""#);
    directory_event(id, at, "superadmin_assigned", &fields)
}

/// The RFC 3339 instant `seconds` after 2026-10-20T00:00:00Z (the property tests' clock).
pub fn seconds_after_start(seconds: u64) -> String {
    use chrono::{DateTime, Duration, SecondsFormat, Utc};
    let start = DateTime::parse_from_rfc3339("2026-10-20T00:00:00Z").unwrap();
    (start.with_timezone(&Utc) + Duration::seconds(seconds as i64))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
