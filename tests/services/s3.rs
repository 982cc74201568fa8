//! The lake on a real S3 API. scripts/test.sh starts one on loopback (moto's server, from
//! PyPI) and sets SIMTALLY_TEST_S3 to a bucket URL plus the usual AWS_* variables; the same
//! test runs against MinIO or AWS given those variables.

use crate::common;

use std::collections::BTreeMap;

use common::{ingest_files, rows, shared_fixture};
use simtally::lake::{Lake, LakeLocation};

fn s3_url() -> String {
    let bucket = std::env::var("SIMTALLY_TEST_S3").expect(
        "SIMTALLY_TEST_S3 is not set: run scripts/test.sh (it starts an S3 server), \
         or point it and AWS_ENDPOINT_URL at one",
    );
    // A fresh prefix per run: the bucket may outlive the run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}/run-{}-{nanos}",
        bucket.trim_end_matches('/'),
        std::process::id()
    )
}

fn s3_lake() -> Lake {
    Lake::new(LakeLocation::parse(&s3_url()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_lake_holds_the_reference_result_and_stays_idempotent() {
    let lake = s3_lake();
    let usage = vec![shared_fixture("sample-1/usage.ndjson")];
    let events = vec![shared_fixture("sample-1/events.ndjson")];
    let first = ingest_files(&lake, &usage, &events).await;
    assert!(first.usage.records > 0);

    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared_fixture("sample-1/expected.json")).unwrap(),
    )
    .unwrap();
    let got: BTreeMap<String, (String, String)> = rows(
        &lake,
        "SELECT workspace_id, SUM(volume_total), SUM(cost) FROM usage GROUP BY workspace_id",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
    .collect();
    let want: BTreeMap<String, (String, String)> = expected["workspaces"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(ws, v)| {
            let text = |k: &str| v[k].as_str().unwrap().to_owned();
            (ws.clone(), (text("volume_total"), text("cost")))
        })
        .collect();
    assert_eq!(got, want, "per-Workspace sums read back from S3");

    let again = ingest_files(&lake, &usage, &events).await;
    assert_eq!(again.usage.records, 0, "the second ingest writes no record");
    assert_eq!(again.usage.already_in_lake, first.usage.records);
    assert!(again.lake_versions.is_empty(), "{:?}", again.lake_versions);
}

/// Three ingests of the same input at once into one S3 lake: the store's conditional put
/// lets one writer win each commit version, and the writer fence makes the others read the
/// lake again, so the lake equals one ingest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_at_the_same_time_into_an_s3_lake_equal_one_ingest() {
    let url = s3_url();
    let (usage, events) = (
        shared_fixture("sample-1/usage.ndjson"),
        shared_fixture("sample-1/events.ndjson"),
    );
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_simtally"))
                .args(["ingest", "--no-progress", "--lake", &url, "--usage"])
                .arg(&usage)
                .arg("--events")
                .arg(&events)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lake = Lake::new(LakeLocation::parse(&url).unwrap());
    common::assert_sample_1(&lake).await;
}
