//! The access rules over HTTP, with a real client against a running server: each person
//! sees exactly the rows of their Workspaces, whichever endpoint they use, and every way
//! around the scope fails.

use crate::common;

use std::collections::BTreeSet;

use common::access::{self, write_fixture};
use common::server::{operator_token, serve, token, token_with, TestServer, OPERATOR_SECRET};
use common::{ingest_files, local_lake, wire};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use simtally::lake::Lake;
use simtally::query::QueryLimits;

struct World {
    dir: tempfile::TempDir,
    lake: Lake,
    server: TestServer,
}

async fn world(limits: QueryLimits) -> World {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    let server = serve(&lake, dir.path(), limits).await;
    World { dir, lake, server }
}

fn ids(rows: &Value, column: &str) -> BTreeSet<i64> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not rows: {rows}"))
        .iter()
        .filter_map(|row| row[column].as_i64())
        .collect()
}

/// The sum the fixture's usage of `workspaces` must add up to: two records each.
fn expected_cost(workspaces: &BTreeSet<i64>) -> Decimal {
    workspaces
        .iter()
        .map(|w| access::cost(*w).parse::<Decimal>().unwrap() * Decimal::from(2))
        .sum()
}

fn decimal(value: &Value) -> Decimal {
    match value {
        Value::String(s) => s.parse().unwrap(),
        other => other.to_string().parse().unwrap(),
    }
}

/// Every way of reading usage gives exactly `expected`.
async fn assert_sees(server: &TestServer, user: &str, expected: &[i64]) {
    let expected: BTreeSet<i64> = expected.iter().copied().collect();
    let token = token(user);

    let listed = server.get("/v1/workspaces", Some(&token), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(
        ids(&listed.json()["workspaces"], "workspace_id"),
        expected,
        "{user}"
    );

    let rows = server
        .sql(&token, "SELECT DISTINCT workspace_id FROM usage")
        .await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text());
    assert_eq!(ids(&rows.json(), "workspace_id"), expected, "{user}: usage");

    let total = server
        .sql(&token, "SELECT SUM(cost) AS cost FROM usage")
        .await
        .json();
    if expected.is_empty() {
        assert!(total[0]["cost"].is_null());
    } else {
        assert_eq!(
            decimal(&total[0]["cost"]),
            expected_cost(&expected),
            "{user}"
        );
    }

    let report = server
        .get("/v1/reports/workspace-usage", Some(&token), None)
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.text());
    assert_eq!(
        ids(&report.json(), "workspace_id"),
        expected,
        "{user}: report"
    );

    let owners = server
        .sql(&token, "SELECT DISTINCT workspace_id FROM ownership")
        .await;
    assert_eq!(
        ids(&owners.json(), "workspace_id"),
        expected,
        "{user}: ownership"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_person_sees_exactly_their_workspaces_before_and_after_an_unlink() {
    let w = world(QueryLimits::default()).await;
    assert_sees(&w.server, "olga", &[101]).await;
    assert_sees(&w.server, "adam", &[101, 102]).await;
    assert_sees(&w.server, "sara", &[101, 102, 103, 201]).await;
    assert_sees(&w.server, "nobody", &[]).await;

    // 103 is organization 3's: the SuperAdmin loses it. 101 is organization 1's own: she
    // stays, as its Administrator.
    let unlink = access::write(
        &w.dir.path().join("unlink.ndjson"),
        &[
            wire::unlinked("d-unlink-103", "2026-10-10T00:00:00Z", 1, 103),
            wire::unlinked("d-unlink-101", "2026-10-10T00:00:01Z", 1, 101),
        ],
    );
    ingest_files(&w.lake, &[], &[unlink]).await;
    // The next request already sees the directory as it is now.
    assert_sees(&w.server, "sara", &[101, 102, 201]).await;
    assert_sees(&w.server, "olga", &[101]).await;
}

/// The server keeps the lake's tables and the directory between requests: what is committed
/// after one answer is in the next (new rows, a revoked role), and the same cached version
/// answers in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_written_while_serving_is_in_the_next_answer() {
    let w = world(QueryLimits::default()).await;
    let olga = token("olga");
    let sum = "SELECT COUNT(*) AS n, SUM(cost) AS cost FROM usage";
    let answer = |rows: Value| (rows[0]["n"].as_i64().unwrap(), decimal(&rows[0]["cost"]));
    let one = BTreeSet::from([101]);
    for _ in 0..2 {
        let rows = w.server.sql(&olga, sum).await.json();
        assert_eq!(answer(rows), (2, expected_cost(&one)));
    }

    let late = access::write(
        &w.dir.path().join("late.ndjson"),
        &[wire::usage(
            5000,
            &access::iccid(101),
            "2026-10-05T10:00:00Z",
            "2026-10-05T10:05:00Z",
            &access::cost(101),
        )],
    );
    ingest_files(&w.lake, &[late], &[]).await;
    let rows = w.server.sql(&olga, sum).await.json();
    let third: Decimal = access::cost(101).parse().unwrap();
    assert_eq!(answer(rows), (3, expected_cost(&one) + third));

    let revoke = access::write(
        &w.dir.path().join("revoke.ndjson"),
        &[wire::revoked(
            "d-revoke-olga",
            "2026-10-11T00:00:00Z",
            "olga",
            101,
        )],
    );
    ingest_files(&w.lake, &[], &[revoke]).await;
    let rows = w.server.sql(&olga, sum).await.json();
    assert_eq!(rows[0]["n"].as_i64(), Some(0), "{rows}");
    let workspaces = w
        .server
        .get("/v1/workspaces", Some(&olga), None)
        .await
        .json();
    assert_eq!(workspaces["workspaces"], json!([]), "{workspaces}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_workspace_you_cannot_access_is_a_403() {
    let w = world(QueryLimits::default()).await;
    let olga = token("olga");
    for path in [
        "/v1/reports/workspace-usage?workspace_id=102",
        "/v1/reports/workspace-usage?workspace_id=101,102",
        "/v1/reports/workspace-usage?workspace_id=101&workspace_id=999",
        "/v1/reports/centralized?workspace_id=101&workspace_id=201",
    ] {
        let answer = w.server.get(path, Some(&olga), None).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), "forbidden");
    }
    let answer = w
        .server
        .query(
            &olga,
            json!({"sql": "SELECT * FROM usage", "workspace_id": [201]}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    // A centralized report needs two Workspaces: Olga has one.
    let answer = w
        .server
        .get("/v1/reports/centralized", Some(&olga), None)
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_code(), "too_few_workspaces");

    // /metrics counted each of those answers by its class, in the OpenMetrics format.
    let metrics = w.server.get("/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text();
    for line in [
        "simtally_api_requests_total{class=\"4xx\"} 6\n",
        "simtally_api_requests_total{class=\"2xx\"} 0\n",
        "simtally_api_requests_total{class=\"5xx\"} 0\n",
    ] {
        assert!(text.contains(line), "{line} not in {text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// SQL that tries to leave Olga's scope (Workspace 101): each either fails or shows
/// nothing but 101.
const ESCAPES: &[&str] = &[
    "SELECT * FROM raw_usage",
    "SELECT * FROM datafusion.public.usage",
    "SELECT * FROM quarantine",
    "SELECT * FROM dead_letters",
    "SELECT * FROM memberships",
    "SELECT * FROM billed_slices",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.columns",
    "SHOW TABLES",
    "SELECT * FROM read_parquet('lake/usage')",
    "SELECT * FROM parquet_metadata('lake/usage')",
    "SELECT * FROM 'lake/usage'",
    "COPY (SELECT * FROM usage) TO '/tmp/simtally-escape.csv'",
    "COPY usage TO '/tmp/simtally-escape.parquet'",
    "CREATE EXTERNAL TABLE raw STORED AS PARQUET LOCATION 'lake/usage'",
    "CREATE VIEW everything AS SELECT * FROM usage",
    "CREATE TABLE copy AS SELECT * FROM usage",
    "SELECT * INTO copy FROM usage",
    "INSERT INTO usage SELECT * FROM usage",
    "DELETE FROM usage",
    "DROP VIEW usage",
    "SET datafusion.catalog.information_schema = true",
    "EXPLAIN SELECT * FROM usage",
    "SELECT 1; SELECT * FROM raw_usage",
    "WITH u AS (SELECT * FROM usage) SELECT DISTINCT workspace_id FROM u",
    "SELECT DISTINCT workspace_id FROM usage WHERE workspace_id = 102 OR 1 = 1",
    "SELECT workspace_id FROM usage UNION SELECT workspace_id FROM usage WHERE workspace_id = 201",
    "SELECT workspace_id FROM usage UNION ALL SELECT 201 AS workspace_id FROM usage WHERE FALSE",
    "SELECT DISTINCT workspace_id FROM (SELECT * FROM usage) /* WHERE 1=1 */ -- OR TRUE",
    "SELECT DISTINCT \"workspace_id\" FROM \"usage\"",
    "SELECT DISTINCT workspace_id FROM USAGE",
    "SELECT DISTINCT workspace_id FROM usage WHERE workspace_id IN (SELECT workspace_id FROM ownership)",
    "SELECT DISTINCT workspace_id FROM ownership WHERE workspace_id <> 101",
    "SELECT workspace_id, source_workspace_id, target_workspace_id FROM sim_events",
    "SELECT workspace_id FROM workspaces",
    "SELECT * FROM simtally.public.usage WHERE workspace_id = 201",
    "SELECT DISTINCT workspace_id FROM usage AS \"usage; DROP VIEW usage\"",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attempt_to_leave_the_scope_fails() {
    let w = world(QueryLimits::default()).await;
    let olga = token("olga");
    for sql in ESCAPES {
        let answer = w.server.sql(&olga, sql).await;
        eprintln!("{} {sql}: {}", answer.status, answer.text());
        if answer.status.is_success() {
            let rows = answer.json();
            for row in rows.as_array().unwrap() {
                for column in ["workspace_id", "source_workspace_id", "target_workspace_id"] {
                    let value = &row[column];
                    assert!(
                        value.is_null() || value.as_i64() == Some(101),
                        "{sql}: {row}"
                    );
                }
            }
        } else {
            assert!(answer.status.is_client_error(), "{sql}: {}", answer.text());
            assert!(!answer.error_code().is_empty(), "{sql}: {}", answer.text());
        }
    }
    // Olga sees her SIM leave, not where it went.
    let moved = w
        .server
        .sql(&olga, "SELECT source_workspace_id, target_workspace_id FROM sim_events WHERE event_type = 'sim_transferred'")
        .await
        .json();
    assert_eq!(
        moved,
        json!([{"source_workspace_id": 101, "target_workspace_id": null}])
    );
    // The statements that change things are refused as such, not by accident.
    for sql in [
        "COPY (SELECT 1) TO '/tmp/x.csv'",
        "CREATE VIEW v AS SELECT 1",
    ] {
        let answer = w.server.sql(&olga, sql).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{sql}");
        assert_eq!(answer.error_code(), "forbidden_statement");
    }
    assert!(!std::path::Path::new("/tmp/simtally-escape.csv").exists());
    assert!(!std::path::Path::new("/tmp/simtally-escape.parquet").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked() {
    let w = world(QueryLimits::default()).await;
    let expired = token_with(common::server::USER_SECRET, "olga", true);
    let forged = token_with(
        "not-the-identity-providers-secret-0123456789",
        "olga",
        false,
    );
    for bad in [
        None,
        Some("not-a-jwt"),
        Some(expired.as_str()),
        Some(forged.as_str()),
    ] {
        let answer = w.server.get("/v1/workspaces", bad, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(answer.error_code(), "unauthorized");
    }
    // Operators have a key of their own: a user token signed with it is no user's.
    let operator_as_user = token_with(OPERATOR_SECRET, "olga", false);
    let answer = w
        .server
        .get("/v1/workspaces", Some(&operator_as_user), None)
        .await;
    assert_eq!(answer.json()["workspaces"].as_array().unwrap().len(), 5);
    assert!(w
        .server
        .get("/healthz", None, None)
        .await
        .status
        .is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_everything_including_dead_letters() {
    let w = world(QueryLimits::default()).await;
    let ops = operator_token();
    let all = w
        .server
        .sql(&ops, "SELECT DISTINCT workspace_id FROM usage")
        .await;
    assert_eq!(
        ids(&all.json(), "workspace_id").len(),
        access::WORKSPACES.len()
    );
    let letters = w.server.sql(&ops, "SELECT reason FROM dead_letters").await;
    assert_eq!(letters.status, StatusCode::OK, "{}", letters.text());
    assert_eq!(letters.json().as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_come_as_json_csv_or_arrow() {
    let w = world(QueryLimits::default()).await;
    let adam = token("adam");
    let path = "/v1/reports/workspace-usage?from=2026-10-02&to=2026-10-02";
    let json = w.server.get(path, Some(&adam), None).await;
    assert_eq!(json.content_type, "application/json");
    let rows = json.json();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows}");

    let csv = w.server.get(path, Some(&adam), Some("text/csv")).await;
    assert!(csv.content_type.starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("workspace_id,usage_date,"), "{text}");
    assert_eq!(lines.len(), 3, "{text}");

    let arrow = w
        .server
        .get(
            path,
            Some(&adam),
            Some("application/vnd.apache.arrow.stream"),
        )
        .await;
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow.body), None).unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);

    let refused = w
        .server
        .get(path, Some(&adam), Some("application/xml"))
        .await;
    assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);

    // An empty answer still says which columns it has.
    let empty = w
        .server
        .get(
            "/v1/reports/workspace-usage?from=2030-01-01",
            Some(&adam),
            Some("text/csv"),
        )
        .await;
    assert!(empty.text().starts_with("workspace_id,usage_date,"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_the_row_limit_are_refused_with_a_clear_error() {
    let w = world(QueryLimits {
        max_rows: 3,
        ..QueryLimits::default()
    })
    .await;
    let answer = w.server.sql(&token("sara"), "SELECT * FROM usage").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.error_code(), "result_too_large");
    assert!(answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("more than 3 rows"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_time_limit_is_stopped_with_a_clear_error() {
    // No query over the lake finishes within a nanosecond: it has files to read.
    let w = world(QueryLimits {
        timeout: std::time::Duration::from_nanos(1),
        ..QueryLimits::default()
    })
    .await;
    let answer = w.server.sql(&token("sara"), "SELECT * FROM usage").await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
    assert_eq!(answer.error_code(), "query_timeout");
}
