//! Hostile and careless queries against the real `simtally serve` process, over HTTP and
//! over the Postgres protocol (psql): each gets its own clear error, and afterwards the
//! service still answers `/healthz` and a normal report for everyone.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::access::write_fixture;
use common::pg::psql_at;
use common::server::{token, OPERATOR_SECRET, USER_SECRET};
use common::{ingest_files, local_lake};

/// A `simtally serve` process on free ports, stopped when dropped.
struct Served {
    child: Child,
    http: String,
    postgres: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(dir: &std::path::Path, lake: &str, flags: &[&str]) -> Served {
        let (users, operators) = (dir.join("users.txt"), dir.join("operators.txt"));
        std::fs::write(&users, USER_SECRET).unwrap();
        std::fs::write(&operators, OPERATOR_SECRET).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_simtally"))
            .args(["serve", "--lake", lake, "--addr", "127.0.0.1:0"])
            .args(["--postgres-addr", "127.0.0.1:0", "--jwt-secret-file"])
            .arg(&users)
            .arg("--operator-secret-file")
            .arg(&operators)
            .args(flags)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut postgres) = (None, None);
        while http.is_none() || postgres.is_none() {
            let line = lines.next().expect("serve prints its addresses").unwrap();
            let address = (line.strip_prefix("simtally serve: listening on http://"))
                .or_else(|| line.strip_prefix("simtally serve: listening on https://"));
            if let Some(address) = address {
                http = Some(address.to_owned());
            }
            if let Some(address) = line.strip_prefix("simtally serve: Postgres protocol on ") {
                postgres = Some(address.to_owned());
            }
        }
        Served {
            child,
            http: http.unwrap(),
            postgres: postgres.unwrap(),
        }
    }

    /// The process has not ended.
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

fn psql(served: &Served, user: &str, sql: &str) -> Result<Vec<String>, String> {
    psql_at(&served.postgres, user, &token(user), sql)
}

/// `POST /v1/query` as `user`: the status and the JSON answer.
async fn post_query(served: &Served, user: &str, sql: &str) -> (u16, serde_json::Value) {
    // The client gives up well after any deadline: an answer means the server stopped.
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
        .post(format!("http://{}/v1/query", served.http))
        .bearer_auth(token(user))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "sql": sql }).to_string())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (
        status,
        serde_json::from_str(&answer.text().await.unwrap()).unwrap(),
    )
}

/// The access fixture in a lake, and `simtally serve` over it with `flags`.
async fn served_fixture(flags: &[&str]) -> (tempfile::TempDir, Served) {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;
    let lake_path = dir.path().join("lake").display().to_string();
    let served = Served::start(dir.path(), &lake_path, flags);
    (dir, served)
}

/// The service answers `/healthz` and a normal report over both endpoints, each within
/// 2 s (the client gives up after that).
async fn still_serves(served: &mut Served) {
    assert!(served.alive(), "the server process ended");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let health = client
        .get(format!("http://{}/healthz", served.http))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let report = client
        .get(format!("http://{}/v1/reports/workspace-usage", served.http))
        .bearer_auth(token("olga"))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 200, "{}", report.text().await.unwrap());
    let rows = psql(served, "olga", "SELECT COUNT(*) FROM usage").unwrap();
    assert_eq!(rows, ["2"]);
}

fn chain(n: usize, term: &str, op: &str) -> String {
    vec![term; n].join(op)
}

/// Statements whose size or depth would overflow a thread's stack in the parser or the
/// planner (which ended the whole process before admission limits).
fn too_complex() -> Vec<(&'static str, String)> {
    vec![
        (
            "2,000 additions",
            format!("SELECT {}", chain(2_000, "1", "+")),
        ),
        (
            "an OR chain of 2,000 terms",
            format!(
                "SELECT COUNT(*) FROM usage WHERE {}",
                chain(2_000, "workspace_id = 101", " OR ")
            ),
        ),
        (
            "an IN list of 40,000 values",
            format!(
                "SELECT COUNT(*) FROM usage WHERE workspace_id IN ({})",
                chain(40_000, "101", ", ")
            ),
        ),
        (
            "10,000 concatenations",
            format!("SELECT {}", chain(10_000, "'x'", " || ")),
        ),
        (
            "parentheses 5,000 deep",
            format!("SELECT {}1{}", "(".repeat(5_000), ")".repeat(5_000)),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_too_big_or_deep_are_refused_and_the_service_stays_up() {
    let (_dir, mut served) = served_fixture(&[]).await;
    still_serves(&mut served).await;

    // A person with no role anywhere, and an Observer.
    for user in ["nobody", "olga"] {
        for (what, sql) in too_complex() {
            let (status, body) = post_query(&served, user, &sql).await;
            assert_eq!(status, 400, "{what} by {user}");
            assert_eq!(
                body["error"]["code"], "statement_too_complex",
                "{what}: {body}"
            );
            still_serves(&mut served).await;

            let refused = psql(&served, user, &sql).unwrap_err();
            assert!(refused.contains("54001"), "{what} by {user}: {refused}");
            still_serves(&mut served).await;
        }
    }
}

/// Work that takes far longer than the limit whatever the lake holds: a cross join of two
/// hundred-thousand-row series.
const ENDLESS: &str =
    "SELECT COUNT(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_deadline_is_stopped_over_both_endpoints() {
    let (_dir, mut served) = served_fixture(&["--query-timeout", "2"]).await;
    let (status, body) = post_query(&served, "olga", ENDLESS).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "query_timeout", "{body}");
    still_serves(&mut served).await;

    // Over Postgres the limit holds whatever the session sets: 0 (none) or longer.
    for setting in [
        "",
        "SET statement_timeout = 0;",
        "SET statement_timeout = '1h';",
    ] {
        let refused = psql(&served, "olga", &format!("{setting}{ENDLESS}")).unwrap_err();
        assert!(refused.contains("57014"), "{setting}: {refused}");
        still_serves(&mut served).await;
    }
    // A shorter one is the client's to set.
    let shortened = psql(
        &served,
        "olga",
        &format!("SET statement_timeout = '100ms'; {ENDLESS}"),
    )
    .unwrap_err();
    assert!(
        shortened.contains("57014") && shortened.contains("100 ms"),
        "{shortened}"
    );
}

/// A function asked to allocate half a gigabyte is refused before it allocates, and the
/// server's peak memory stays far below it; engine errors carry PostgreSQL's SQLSTATEs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_asked_by_arguments_are_bounded_and_errors_have_sqlstates() {
    let (_dir, mut served) = served_fixture(&[]).await;
    let huge = "SELECT length(repeat('x', 500000000))";
    let (status, body) = post_query(&served, "olga", huge).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "resources_exhausted", "{body}");
    let refused = psql(&served, "olga", huge).unwrap_err();
    assert!(refused.contains("53200"), "{refused}");
    still_serves(&mut served).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", served.child.id())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kib < 400 * 1024, "peak {peak_kib} KiB");

    // A join with a table function once panicked inside DataFusion ("partition not used
    // yet"); it answers, over both endpoints: olga's 2 rows, squared, times 8.
    let joined = "SELECT COUNT(*) AS n FROM usage a, usage b, generate_series(1, 8)";
    let (status, body) = post_query(&served, "olga", joined).await;
    assert_eq!(
        (status, &body[0]["n"]),
        (200, &serde_json::json!(32)),
        "{body}"
    );
    assert_eq!(psql(&served, "olga", joined).unwrap(), ["32"]);

    // Clients read the server's major version from version() (SQLAlchemy refuses
    // anything that does not start like PostgreSQL's).
    for sql in ["SELECT version()", "SELECT pg_catalog.version()"] {
        let version = psql(&served, "olga", sql).unwrap();
        assert!(
            version[0].starts_with("PostgreSQL 16.6 (simtally "),
            "{version:?}"
        );
    }
    // What pools and ORMs send around their queries is accepted in a read-only session.
    let around = "BEGIN; SAVEPOINT s1; SELECT COUNT(*) FROM usage; RELEASE SAVEPOINT s1; \
                  COMMIT; DISCARD ALL;";
    // psql -q prints the rows, not the command tags.
    let tags = ["2"];
    assert_eq!(psql(&served, "olga", around).unwrap(), tags);
    for (sql, state) in [
        ("SELECT * FROM no_such_table", "42P01"),
        ("SELECT no_such_column FROM usage", "42703"),
        ("SELECT no_such_function(1)", "42883"),
        ("SELEC 1", "42601"),
    ] {
        let refused = psql(&served, "olga", sql).unwrap_err();
        assert!(refused.contains(state), "{sql}: {refused}");
    }
}

/// Connections past the maximum get a clear refusal, and connections that send nothing
/// (or half a request) are closed after the idle timeout, on both endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_maximum_are_refused_and_idle_ones_closed() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let flags = ["--max-connections", "3", "--idle-timeout", "2"];
    let (_dir, mut served) = served_fixture(&flags).await;
    let wait = Some(Duration::from_secs(30));
    for endpoint in [served.http.clone(), served.postgres.clone()] {
        let mut held: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(&endpoint).unwrap())
            .collect();
        // Half a request: HTTP headers without their end, a Postgres startup length alone.
        let half: &[u8] = match endpoint == served.http {
            true => b"GET /healthz HTTP/1.1\r\nHost: simtally\r\n",
            false => &[0, 0, 0, 8],
        };
        held[0].write_all(half).unwrap();
        let mut fourth = TcpStream::connect(&endpoint).unwrap();
        fourth.set_read_timeout(wait).unwrap();
        let mut refusal = Vec::new();
        let _ = fourth.read_to_end(&mut refusal);
        let refusal = String::from_utf8_lossy(&refusal);
        let expected = match endpoint == served.http {
            true => "too_many_connections",
            false => "53300",
        };
        assert!(refusal.contains(expected), "{endpoint}: {refusal}");
        // The server closes each held connection once it has been idle (end of stream).
        for connection in &mut held {
            connection.set_read_timeout(wait).unwrap();
            let mut rest = Vec::new();
            let ended = connection.read_to_end(&mut rest);
            assert!(ended.is_ok(), "{endpoint}: {ended:?}");
        }
    }
    still_serves(&mut served).await;
}

/// One person cannot take more than their share of the query slots: with one slot and one
/// place in the queue each, of three heavy queries sent at once one runs to its deadline
/// and the others are refused (queue full, or waited past the deadline); another person is
/// answered meanwhile. The same over Postgres (SQLSTATE 53000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_cannot_take_every_query_slot() {
    let flags = [
        "--queries-per-caller",
        "1",
        "--queued-per-caller",
        "1",
        "--query-timeout",
        "4",
    ];
    let (_dir, mut served) = served_fixture(&flags).await;
    let served_ref = &served;
    let heavy = (0..3).map(|_| post_query(served_ref, "olga", ENDLESS));
    let other = async {
        let (status, _) = post_query(served_ref, "adam", "SELECT COUNT(*) FROM usage").await;
        status
    };
    let (answers, adam) = tokio::join!(futures::future::join_all(heavy), other);
    assert_eq!(adam, 200);
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    // One runs to its deadline, one finds the queue full; the queued one is refused or
    // gets its slot only as its deadline passes.
    let full = |body: &serde_json::Value| {
        body["error"]["code"] == "too_many_queries"
            && body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("running and")
    };
    assert_eq!(
        answers.iter().filter(|(_, b)| full(b)).count(),
        1,
        "{answers:?}"
    );
    assert!(statuses[0] == 422 && statuses.iter().all(|s| *s == 422 || *s == 429));
    let postgres = (0..3).map(|_| {
        let served = (served.postgres.clone(), token("olga"));
        tokio::task::spawn_blocking(move || {
            common::pg::psql_at(&served.0, "olga", &served.1, ENDLESS).unwrap_err()
        })
    });
    let mut refused: Vec<String> = futures::future::join_all(postgres)
        .await
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            ["57014", "53000"]
                .into_iter()
                .find(|code| e.contains(code))
                .unwrap_or(&e)
                .to_owned()
        })
        .collect();
    refused.sort();
    assert!(refused.contains(&"53000".to_owned()) && refused.contains(&"57014".to_owned()));
    assert!(
        refused.iter().all(|c| c == "53000" || c == "57014"),
        "{refused:?}"
    );
    still_serves(&mut served).await;
}

/// With a certificate, the HTTP endpoint speaks HTTPS (curl verifying the certificate) and
/// the Postgres endpoint TLS (psql `sslmode=verify-full`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_endpoints_speak_tls_with_a_certificate() {
    let certificates = tempfile::tempdir().unwrap();
    let (cert, key) = (
        certificates.path().join("tls.crt"),
        certificates.path().join("tls.key"),
    );
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let (cert_flag, key_flag) = (cert.display().to_string(), key.display().to_string());
    let flags = ["--tls-cert-file", &cert_flag, "--tls-key-file", &key_flag];
    let (_dir, served) = served_fixture(&flags).await;
    let health = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &cert_flag])
        .arg(format!("https://{}/healthz", served.http))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&health.stdout),
        "ok\n",
        "{health:?}"
    );
    let (host, port) = served.postgres.rsplit_once(':').unwrap();
    let target = format!(
        "host={host} port={port} user=olga dbname=simtally sslmode=verify-full sslrootcert={cert_flag}"
    );
    let rows = Command::new("psql")
        .args([
            &target,
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT COUNT(*) FROM usage",
        ])
        .env("PGPASSWORD", token("olga"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&rows.stdout).trim(),
        "2",
        "{rows:?}"
    );
}
