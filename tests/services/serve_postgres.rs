//! The access rules over the Postgres wire protocol, with psql (the real client) against a
//! running server: the same rows per person as over HTTP, the token as password, and every
//! way around the scope refused.

use crate::common;

use common::access::write_fixture;
use common::pg::psql_at;
use common::server::{serve, token, TestServer};
use common::{ingest_files, local_lake, wire};
use simtally::query::QueryLimits;

/// psql's answer: rows or the error it printed.
fn psql(server: &TestServer, user: &str, password: &str, sql: &str) -> Result<Vec<String>, String> {
    psql_at(&server.postgres.to_string(), user, password, sql)
}

fn as_user(server: &TestServer, user: &str, sql: &str) -> Result<Vec<String>, String> {
    psql(server, user, &token(user), sql)
}

async fn world() -> (tempfile::TempDir, simtally::lake::Lake, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    let server = serve(&lake, dir.path(), QueryLimits::default()).await;
    (dir, lake, server)
}

fn workspaces_seen(server: &TestServer, user: &str) -> Vec<String> {
    let sql = "SELECT DISTINCT workspace_id FROM usage ORDER BY workspace_id";
    as_user(server, user, sql).unwrap_or_else(|e| panic!("{user}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_shows_each_person_exactly_their_workspaces() {
    let (dir, lake, server) = world().await;
    let seen = |user| workspaces_seen(&server, user);
    assert_eq!(seen("olga"), ["101"]);
    assert_eq!(seen("adam"), ["101", "102"]);
    assert_eq!(seen("sara"), ["101", "102", "103", "201"]);
    assert!(seen("nobody").is_empty());
    assert_eq!(
        as_user(
            &server,
            "adam",
            "SELECT workspace_id, role FROM workspaces ORDER BY 1"
        )
        .unwrap(),
        ["101|Administrator", "102|Administrator"]
    );

    // 103 is another organization's: the SuperAdmin loses it on unlink.
    let unlink = common::access::write(
        &dir.path().join("unlink.ndjson"),
        &[wire::unlinked(
            "d-unlink-103",
            "2026-10-10T00:00:00Z",
            1,
            103,
        )],
    );
    ingest_files(&lake, &[], &[unlink]).await;
    assert_eq!(seen("sara"), ["101", "102", "201"]);
    assert_eq!(seen("olga"), ["101"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_must_be_a_valid_token() {
    let (_dir, _lake, server) = world().await;
    let refused = psql(&server, "olga", "not-a-token", "SELECT 1").unwrap_err();
    assert!(refused.to_lowercase().contains("password"), "{refused}");
    // The user name is free: the token says who you are.
    let rows = psql(
        &server,
        "whoever",
        &token("olga"),
        "SELECT DISTINCT workspace_id FROM usage",
    )
    .unwrap();
    assert_eq!(rows, ["101"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_cannot_leave_the_scope() {
    let (_dir, _lake, server) = world().await;
    let refused = [
        "SELECT * FROM raw_usage",
        "SELECT * FROM quarantine",
        "SELECT * FROM dead_letters",
        "SELECT * FROM memberships",
        "SELECT * FROM read_parquet('lake/usage')",
        "SELECT * FROM datafusion.public.usage",
        "SELECT pg_read_file('/etc/passwd')",
        "COPY (SELECT * FROM usage) TO '/tmp/simtally-pg-escape.csv'",
        "CREATE EXTERNAL TABLE raw STORED AS PARQUET LOCATION 'lake/usage'",
        "CREATE VIEW v AS SELECT * FROM usage",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO usage SELECT * FROM usage",
        "DROP VIEW usage",
        "EXPLAIN SELECT * FROM usage",
    ];
    for sql in refused {
        let answer = as_user(&server, "olga", sql);
        eprintln!("{sql}: {answer:?}");
        assert!(answer.is_err(), "{sql}: {answer:?}");
    }
    let scoped = [
        "SELECT DISTINCT workspace_id FROM usage WHERE workspace_id = 102 OR 1 = 1",
        "WITH u AS (SELECT * FROM usage) SELECT DISTINCT workspace_id FROM u",
        "SELECT workspace_id FROM usage UNION SELECT workspace_id FROM usage WHERE workspace_id = 201",
        "SELECT DISTINCT workspace_id FROM \"usage\" /* WHERE 1=1 */ -- OR TRUE",
        "SELECT DISTINCT workspace_id FROM ownership",
        "SELECT DISTINCT workspace_id FROM workspaces",
    ];
    for sql in scoped {
        let rows = as_user(&server, "olga", sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(rows, ["101"], "{sql}");
    }
    // The catalog a BI tool browses lists the views and nothing else.
    let tables = as_user(
        &server,
        "olga",
        "SELECT relname FROM pg_catalog.pg_class WHERE relkind IN ('r', 'v') ORDER BY relname",
    )
    .unwrap();
    eprintln!("pg_class: {tables:?}");
    for table in &tables {
        assert!(
            ["usage", "ownership", "sim_events", "workspaces"].contains(&table.as_str())
                || !table.starts_with(|c: char| c.is_ascii_lowercase())
                || table.starts_with("pg_"),
            "{tables:?}"
        );
    }
    assert!(!tables
        .iter()
        .any(|t| t == "dead_letters" || t == "memberships"));
    // information_schema (Grafana's and Metabase's pickers) lists the same views.
    let listed = as_user(
        &server,
        "olga",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' \
         ORDER BY 1",
    )
    .unwrap();
    assert_eq!(listed, ["ownership", "sim_events", "usage", "workspaces"]);
    let columns = as_user(
        &server,
        "olga",
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = 'usage' AND column_name IN ('cost', 'start_time', 'source') ORDER BY 1",
    )
    .unwrap();
    assert_eq!(
        columns,
        ["cost|numeric", "start_time|timestamp with time zone"]
    );
    // A `SET` cannot make anyone an operator.
    let escalate = as_user(
        &server,
        "olga",
        "SET simtally.viewer = 'operator'; SELECT DISTINCT workspace_id FROM usage",
    );
    if let Ok(rows) = escalate {
        let rows: Vec<&String> = rows.iter().filter(|r| *r != "SET").collect();
        assert_eq!(rows, ["101"]);
    }
    assert!(!std::path::Path::new("/tmp/simtally-pg-escape.csv").exists());
}
