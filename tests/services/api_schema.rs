//! The OpenAPI document against the live server: it is what `/openapi.json` serves, it names
//! every report, and schemathesis (from PyPI; scripts/test.sh installs it) generates requests
//! from it and finds no server error and no answer the document does not describe.

use crate::common;

use std::process::Command;

use common::access::write_fixture;
use common::kafka::brokers;
use common::server::{serve_with_events, token};
use common::{ingest_files, local_lake};
use serde_json::Value;
use simtally::kafka::{produce, ProduceOptions, Topics};
use simtally::query::{QueryLimits, REPORTS};
use simtally::serve::EventsTopic;

fn document() -> Value {
    serde_json::from_str(simtally::serve::OPENAPI).expect("the OpenAPI document is JSON")
}

#[test]
fn the_document_names_every_report_and_the_workspaces_tag() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let names: Vec<&str> = doc["paths"]["/v1/reports/{name}"]["get"]["parameters"][0]["schema"]
        ["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let reports: Vec<&str> = REPORTS.iter().map(|r| r.name).collect();
    assert_eq!(names, reports);
    for path in ["/v1/workspaces", "/v1/reports", "/v1/reports/{name}"] {
        assert_eq!(doc["paths"][path]["get"]["tags"][0], "Workspaces", "{path}");
    }
    assert_eq!(doc["paths"]["/v1/query"]["post"]["tags"][0], "Workspaces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let schemathesis = std::env::var("SIMTALLY_TEST_SCHEMATHESIS").expect(
        "SIMTALLY_TEST_SCHEMATHESIS is not set: run scripts/test.sh (it installs schemathesis), \
         or point it at a schemathesis executable",
    );
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    // Directory changes and transfers are published to a topic of the test broker, as a
    // deployed server does (without one they would all be 503).
    let topics = Topics {
        usage: format!("schema-usage-{}", std::process::id()),
        events: format!("schema-events-{}", std::process::id()),
    };
    produce(ProduceOptions {
        brokers: brokers(),
        topics: topics.clone(),
        usage: Vec::new(),
        events: Vec::new(),
        partitions: 1,
    })
    .await
    .expect("the topics are created");
    let events_topic = EventsTopic {
        brokers: brokers(),
        topic: topics.events,
    };
    let server = serve_with_events(
        &lake,
        dir.path(),
        QueryLimits::default(),
        Some(events_topic),
    )
    .await;

    let served = server.get("/openapi.json", None, None).await;
    assert_eq!(served.json(), document());

    let base = server.base.clone();
    let sara = token("sara");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .args([
                "run",
                &format!("{base}/openapi.json"),
                "--header",
                &format!("Authorization: Bearer {sara}"),
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_schema_conformance,response_headers_conformance,ignored_auth",
                "--max-examples",
                "60",
                // One worker: hypothesis parses its own sources (to describe filters) with
                // CPython 3.11's `ast.parse`, which is not safe in two threads at once
                // (`SystemError: AST constructor recursion depth mismatch`, CPython
                // gh-106905, fixed in later releases).
                "--workers",
                "1",
                "--seed",
                "20261128",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .expect("schemathesis runs")
    })
    .await
    .unwrap();
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{report}");
    assert!(output.status.success(), "{report}");
}
