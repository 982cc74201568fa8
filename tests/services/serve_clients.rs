//! The BI tools' and drivers' own clients against the Postgres endpoint: psql (`\d`,
//! `\dv`, `\copy`), and psycopg 3, psycopg2, SQLAlchemy 2 with pandas, and the
//! introspection statements of Grafana, Metabase and DBeaver (tests/clients/), as a person
//! with a role and as one without. What each must see comes from the fixture.

use crate::common;

use std::process::Command;

use common::access::{cost, write_fixture};
use common::pg::psql_at;
use common::server::{serve, token, TestServer};
use common::{ingest_files, local_lake};
use simtally::query::QueryLimits;

async fn world() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    let server = serve(&lake, dir.path(), QueryLimits::default()).await;
    (dir, server)
}

fn psql(server: &TestServer, user: &str, command: &str) -> Result<Vec<String>, String> {
    psql_at(&server.postgres.to_string(), user, &token(user), command)
}

/// The Python interpreter with the clients installed (scripts/test.sh sets it up).
fn python() -> String {
    std::env::var("SIMTALLY_TEST_PYTHON").expect(
        "SIMTALLY_TEST_PYTHON: a Python with psycopg, psycopg2, SQLAlchemy and pandas \
         (scripts/test.sh installs them)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_describes_views_and_refuses_copy() {
    let (dir, server) = world().await;
    let described = psql(&server, "olga", "\\d usage").unwrap().join("\n");
    for column in [
        "cost|numeric",
        "start_time|timestamp with time zone",
        "iccid|text",
    ] {
        assert!(described.contains(column), "{described}");
    }
    assert!(!described.contains("source|"), "{described}");
    let views = psql(&server, "olga", "\\dv").unwrap();
    let names: Vec<&str> = views.iter().filter_map(|r| r.split('|').nth(1)).collect();
    assert_eq!(names, ["ownership", "sim_events", "usage", "workspaces"]);
    // The OIDs a tool joins on are the same from one statement to the next.
    let oid = "SELECT oid FROM pg_catalog.pg_class WHERE relname = 'usage'";
    let first = psql(&server, "olga", oid).unwrap();
    for _ in 0..3 {
        assert_eq!(psql(&server, "olga", oid).unwrap(), first);
    }
    let target = dir.path().join("copied.csv");
    let copy = format!("\\copy usage to '{}'", target.display());
    let refused = psql(&server, "olga", &copy).unwrap_err();
    assert!(refused.contains("42501"), "{refused}");
    // psql creates the local file before it asks; nothing may arrive in it.
    assert!(std::fs::read(&target).map_or(true, |bytes| bytes.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_orms_and_bi_introspection_work() {
    let (_dir, server) = world().await;
    let views = ["ownership", "sim_events", "usage", "workspaces"];
    let olga_cost =
        cost(101).parse::<rust_decimal::Decimal>().unwrap() * rust_decimal::Decimal::TWO;
    let expected = serde_json::json!({
        "olga": {
            "workspaces": [101],
            "workspaces_with_usage": [101],
            "rows": 2,
            "cost": olga_cost.to_string(),
            "starts": ["2026-10-02T10:00:00+00:00", "2026-10-03T10:00:00+00:00"],
            "views": views,
        },
        "nobody": {
            "workspaces": [],
            "workspaces_with_usage": [],
            "rows": 0,
            "cost": "0",
            "starts": [],
            "views": views,
        },
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/pg_clients.py");
    let introspection = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/introspection");
    let output = Command::new(python())
        .arg(script)
        .arg(server.postgres.ip().to_string())
        .arg(server.postgres.port().to_string())
        .arg(expected.to_string())
        .arg(introspection)
        .env("SIMTALLY_TOKEN_OLGA", token("olga"))
        .env("SIMTALLY_TOKEN_NOBODY", token("nobody"))
        .output()
        .unwrap();
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("all clients answered as expected"),
        "{shown}"
    );
}
