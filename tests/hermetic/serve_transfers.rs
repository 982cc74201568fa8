//! SIM transfer requests over HTTP: every rule, dry runs, all-or-nothing real runs. A real
//! run's events through Kafka: tests/services/serve_transfers_kafka.rs.

use crate::common;

use common::access::{self, write_fixture};
use common::server::{operator_token, serve, token};
use common::transfers::{codes, sim_lines, transfer, world, ACTIVE, DELETED, IDLE, IN_DEVICE};
use common::{ingest_files, local_lake, wire};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simtally::query::QueryLimits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_would_happen_to_each_sim() {
    let (_dir, _lake, server) = world(None).await;
    let (status, answer) = transfer(
        &server,
        "adam",
        json!({"iccids": [IDLE, ACTIVE, IN_DEVICE, DELETED, "8988303000000000201"], "target_workspace_id": 102}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["dry_run"], true);
    assert_eq!(answer["accepted"], false);
    assert_eq!(answer["published"], false);
    assert_eq!(
        codes(&answer),
        vec![
            (IDLE.to_owned(), json!(["sim_transferred"])),
            (
                ACTIVE.to_owned(),
                json!(["sim_transferred", "sim_status_changed"])
            ),
            (IN_DEVICE.to_owned(), json!("attached_to_device")),
            (DELETED.to_owned(), json!("deleted_sim")),
            // Workspace 201's SIM: Adam cannot see it, so it is unknown to him.
            ("8988303000000000201".to_owned(), json!("unknown_sim")),
        ]
    );
    let (_, detached) = transfer(
        &server,
        "adam",
        json!({"iccids": [IN_DEVICE], "target_workspace_id": 102, "auto_detach_devices": true}),
    )
    .await;
    assert_eq!(
        codes(&detached),
        vec![(
            IN_DEVICE.to_owned(),
            json!(["sim_detached", "sim_transferred"])
        )]
    );
    assert_eq!(detached["sims"][0]["device_id"], "tracker-1");
}

/// A transfer that arrives as an event follows the API's rules: the device stays in the
/// source, an ACTIVATED SIM arrives SUSPENDED, and one naming a person who does not manage
/// both Workspaces is refused at ingest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_from_events_detach_the_device_and_suspend() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    let more = access::write(&dir.path().join("sims.ndjson"), &sim_lines());
    let at = "2026-10-02T00:00:00Z";
    let moves = access::write(
        &dir.path().join("moves.ndjson"),
        &[
            // Another system's records: no detach, no status change published.
            wire::by(&wire::transferred("x-1", at, IN_DEVICE, 101, 102), "adam"),
            wire::by(&wire::transferred("x-2", at, ACTIVE, 101, 102), "adam"),
            // olga observes 101 only.
            wire::by(&wire::transferred("x-3", at, IDLE, 101, 102), "olga"),
        ],
    );
    let summary = ingest_files(&lake, &[usage], &[events, more, moves]).await;
    assert_eq!(summary.events.dead_letters, 2 + 1, "{summary:?}");
    let server = serve(&lake, dir.path(), QueryLimits::default()).await;
    let (status, answer) = transfer(
        &server,
        "adam",
        json!({"iccids": [IN_DEVICE, ACTIVE, IDLE], "target_workspace_id": 101}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sims = answer["sims"].as_array().unwrap();
    let seen: Vec<_> = sims
        .iter()
        .map(|s| {
            (
                s["source_workspace_id"].clone(),
                s["status"].clone(),
                s["device_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (json!(102), json!("ISSUED"), Value::Null),
            (json!(102), json!("SUSPENDED"), Value::Null),
            (json!(101), json!("ISSUED"), Value::Null),
        ]
    );
    assert_eq!(codes(&answer)[2].1, json!("already_in_target"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_and_superadmins_of_both_workspaces_move_sims() {
    let (_dir, _lake, server) = world(None).await;
    let idle = |target: i64| json!({"iccids": [IDLE], "target_workspace_id": target});
    // Olga only observes 101; Adam has no role in 201; Sara only observes 201.
    for (user, target) in [("olga", 101), ("olga", 102), ("adam", 201), ("sara", 201)] {
        let (status, answer) = transfer(&server, user, idle(target)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{user} -> {target}: {answer}"
        );
    }
    // The source counts too: Olga's Workspace 101 SIM, asked for by Adam into 102, is fine;
    // Sara (SuperAdmin of 101-103) may move it to 103.
    let (status, answer) = transfer(&server, "sara", idle(103)).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (StatusCode::OK, json!(true)),
        "{answer}"
    );
    let answer = server
        .post("/v1/sim-transfers", &operator_token(), idle(102))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_whole() {
    let (_dir, _lake, server) = world(None).await;
    for body in [
        json!({"target_workspace_id": 102}),
        json!({"iccids": [IDLE], "iccid_range": {"first": IDLE, "last": IDLE}, "target_workspace_id": 102}),
        json!({"iccid_range": {"first": "8988303000000000000", "last": "8988303000000009999"}, "target_workspace_id": 102}),
        json!({"iccids": [IDLE], "target_workspace_id": 0}),
        json!({"iccids": [IDLE], "target_workspace_id": 102, "surprise": true}),
    ] {
        let (status, answer) = transfer(&server, "adam", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let range =
        json!({"iccid_range": {"first": IDLE, "last": DELETED}, "target_workspace_id": 102});
    let (status, answer) = transfer(&server, "adam", range).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["sims"].as_array().unwrap().len(), 4);
    // A real run with one SIM that cannot move moves none.
    let refused = json!({"iccids": [IDLE, DELETED], "target_workspace_id": 102, "dry_run": false});
    let (status, answer) = transfer(&server, "adam", refused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["published"], false);
    // Without brokers the server cannot publish, and says so.
    let real = json!({"iccids": [IDLE], "target_workspace_id": 102, "dry_run": false});
    let answer = server.post("/v1/sim-transfers", &token("adam"), real).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.error_code(), "events_topic_unavailable");
}
