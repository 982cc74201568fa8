//! Wire-format lines (NDJSON) for tests: usage records and lifecycle events.

pub fn usage(id: u64, iccid: &str, start: &str, end: &str, cost: &str) -> String {
    format!(
        r#"{{"id": {id}, "traffic_type": {{"id": 5, "description": "Data"}}, "start_timestamp": "{start}", "end_timestamp": "{end}", "sim": {{"iccid": "{iccid}"}}, "operator": {{"name": "Vodafone", "mnc": "01", "country": {{"mcc": "262", "name": "Germany"}}}}, "volume": {{"rx": 1.0, "tx": 1.0, "total": 2.0}}, "cost": {cost}, "currency": {{"code": "EUR"}}}}"#
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
