//! A lake and server for SIM transfer requests: the access fixture's Workspaces plus four
//! SIMs of Workspace 101 (idle, activated, in a device, deleted).

use reqwest::StatusCode;
use serde_json::{json, Value};
use simtally::lake::Lake;
use simtally::query::QueryLimits;
use simtally::serve::EventsTopic;

use super::access::{self, write_fixture};
use super::server::{serve_with_events, token, TestServer};
use super::{ingest_files, local_lake, wire};

/// SIMs of Workspace 101 beside the access fixture's: idle, activated, in a device, deleted.
pub const IDLE: &str = "8988303000000007001";
pub const ACTIVE: &str = "8988303000000007002";
pub const IN_DEVICE: &str = "8988303000000007003";
pub const DELETED: &str = "8988303000000007004";

pub fn device_event(id: &str, iccid: &str) -> String {
    format!(
        r#"{{"event_id": "{id}", "type": "sim_attached", "timestamp": "2026-10-01T02:00:00Z", "iccid": "{iccid}", "device_id": "tracker-1"}}"#
    )
}

pub fn sim_lines() -> Vec<String> {
    let at = "2026-10-01T00:00:00Z";
    let later = "2026-10-01T01:00:00Z";
    let mut lines: Vec<String> = [IDLE, ACTIVE, IN_DEVICE, DELETED]
        .iter()
        .enumerate()
        .map(|(n, iccid)| wire::registered(&format!("m-{n}"), at, iccid, 101))
        .collect();
    lines.push(wire::status("m-act", later, ACTIVE, 101, "ACTIVATED"));
    lines.push(wire::status("m-del", later, DELETED, 101, "DELETED"));
    lines.push(device_event("m-dev", IN_DEVICE));
    lines
}

pub async fn world(events_topic: Option<EventsTopic>) -> (tempfile::TempDir, Lake, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    let more = access::write(&dir.path().join("sims.ndjson"), &sim_lines());
    ingest_files(&lake, &[usage], &[events, more]).await;
    let server = serve_with_events(&lake, dir.path(), QueryLimits::default(), events_topic).await;
    (dir, lake, server)
}

pub async fn transfer(server: &TestServer, user: &str, body: Value) -> (StatusCode, Value) {
    let answer = server.post("/v1/sim-transfers", &token(user), body).await;
    (answer.status, answer.json())
}

pub fn codes(answer: &Value) -> Vec<(String, Value)> {
    answer["sims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let iccid = s["iccid"].as_str().unwrap().to_owned();
            match s["error"]["code"].as_str() {
                Some(code) => (iccid, json!(code)),
                None => (iccid, s["events"].clone()),
            }
        })
        .collect()
}
