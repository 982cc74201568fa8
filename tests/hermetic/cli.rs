//! The command line as a user meets it: the real binary, real files, real exit codes.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::shared_fixture;

fn simtally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `simtally query --format csv` on a lake; the command must succeed.
fn query_csv(lake: &str, sql: &str) -> String {
    let out = simtally(&["query", "--lake", lake, "--format", "csv", sql]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// One clear message, a non-zero exit, and never a panic or backtrace.
fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn help_teaches_the_commands() {
    let out = simtally(&["--help"]);
    assert!(out.status.success());
    for word in ["ingest", "query", "report", "generate", "demo"] {
        assert!(stdout(&out).contains(word), "--help lacks {word}");
    }
    let out = simtally(&["ingest", "--help"]);
    assert!(stdout(&out).contains("SIMTALLY_LAKE"));
}

#[test]
fn bad_arguments_and_inputs_fail_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    assert_clean_failure(
        &simtally(&["ingest", "--lake", lake]),
        2,
        "nothing to ingest",
    );
    assert_clean_failure(
        &simtally(&["ingest", "--usage", "/no/such/file.ndjson", "--lake", lake]),
        1,
        "cannot open /no/such/file.ndjson",
    );
    assert_clean_failure(
        &simtally(&["ingest", "--usage", "x", "--lake", "ftp://host/x"]),
        2,
        "not a lake location",
    );
    assert_clean_failure(
        &simtally(&["query", "--lake", lake, "SELECT 1"]),
        1,
        "no lake at",
    );
    assert_clean_failure(
        &simtally(&["report", "workspace-usage", "--from", "yesterday"]),
        2,
        "not a date",
    );
    assert_clean_failure(
        &simtally(&["report", "workspace-usage", "--workspace", "0"]),
        2,
        "not a Workspace id",
    );
    assert_clean_failure(
        &simtally(&["produce", "--brokers", "127.0.0.1:9"]),
        2,
        "nothing to produce",
    );
    assert_clean_failure(
        &simtally(&[
            "produce",
            "--brokers",
            "h:1",
            "--events",
            "e",
            "--partitions",
            "0",
        ]),
        2,
        "--partitions",
    );
    assert_clean_failure(
        &simtally(&["lake", "compact", "--lake", "/nonexistent/simtally-lake"]),
        1,
        "no lake at",
    );
    assert_clean_failure(
        &simtally(&["ingest", "--brokers", "127.0.0.1:9"]),
        1,
        "no answer from the Kafka brokers '127.0.0.1:9'",
    );
    assert_clean_failure(
        &simtally(&["ingest", "--brokers", "h:1", "--pass-seconds", "0"]),
        2,
        "--pass-seconds",
    );
    assert_clean_failure(
        &simtally(&[
            "ingest",
            "--usage",
            "u.ndjson",
            "--metrics-addr",
            "127.0.0.1:0",
        ]),
        2,
        "--metrics-addr is for a following Kafka ingest",
    );
    assert_clean_failure(
        &simtally(&[
            "ingest",
            "--brokers",
            "h:1",
            "--exit-at-end",
            "--usage",
            "u.ndjson",
        ]),
        2,
        "not both",
    );
    assert_clean_failure(
        &simtally(&["ingest", "--brokers", "127.0.0.1:9", "--exit-at-end"]),
        1,
        "127.0.0.1:9",
    );
    let unknown_allocator = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args(["ingest", "--usage", "u.ndjson"])
        .env("SIMTALLY_ALLOCATOR", "jemalloc")
        .output()
        .unwrap();
    assert_clean_failure(
        &unknown_allocator,
        2,
        "SIMTALLY_ALLOCATOR=jemalloc is not an allocator",
    );
}

#[test]
fn ingest_query_and_report_on_a_real_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let lake = lake.to_str().unwrap();
    let usage = shared_fixture("sample-1/usage.ndjson");
    let events = shared_fixture("sample-1/events.ndjson");

    // Usage through stdin, events from a file.
    let mut child = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args([
            "ingest",
            "--usage",
            "-",
            "--events",
            events.to_str().unwrap(),
            "--lake",
            lake,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&usage).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("accounted for           yes"),
        "{}",
        stdout(&out)
    );

    assert_eq!(
        query_csv(
            lake,
            "SELECT SUM(cost) AS cost FROM usage WHERE workspace_id = 101"
        ),
        "cost\n67.5076662756\n"
    );

    let out = simtally(&[
        "query",
        "--lake",
        lake,
        "--format",
        "json",
        "SELECT workspace_id, SUM(cost) AS cost FROM usage WHERE workspace_id = 102 GROUP BY 1",
    ]);
    assert!(stdout(&out).contains("79.9664018456"), "{}", stdout(&out));
    // Every table `query --help` lists is there, empty before its first write.
    assert_eq!(
        query_csv(lake, "SELECT count(*) AS n FROM invoices"),
        "n\n0\n"
    );

    assert_clean_failure(
        &simtally(&["query", "--lake", lake, "SELEC nonsense"]),
        1,
        "SQL error",
    );
    // A query's joins and aggregates get a memory pool: a join whose build side does not
    // fit fails with a clear message instead of taking the machine's memory.
    let join = "SELECT COUNT(*) AS n FROM range(0, 2000000) a JOIN range(0, 2000000) b \
                ON a.value = b.value";
    assert_eq!(query_csv(lake, join), "n\n2000000\n");
    assert_clean_failure(
        &simtally(&["query", "--lake", lake, "--query-memory-mb", "16", join]),
        1,
        "Resources exhausted",
    );
    assert_clean_failure(
        &simtally(&["report", "no-such-report", "--lake", lake]),
        1,
        "unknown report 'no-such-report'",
    );
    assert_clean_failure(
        &simtally(&[
            "report",
            "centralized",
            "--workspace",
            "101",
            "--lake",
            lake,
        ]),
        1,
        "2 or more Workspaces",
    );

    let out = simtally(&["report", "--list"]);
    for name in ["workspace-usage", "centralized", "top-sims", "networks"] {
        assert!(stdout(&out).contains(name));
    }
    let out = simtally(&[
        "report",
        "centralized",
        "--workspace",
        "101",
        "--workspace",
        "102",
        "--lake",
        lake,
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(",combined,"));
    // Every accepted transfer closes one tenure.
    let transfers = std::fs::read_to_string(&events)
        .unwrap()
        .matches("\"sim_transferred\"")
        .count();
    assert!(transfers > 0);
    assert_eq!(
        query_csv(
            lake,
            "SELECT COUNT(*) AS n FROM ownership WHERE valid_to IS NOT NULL"
        ),
        format!("n\n{transfers}\n")
    );
}

#[test]
fn configuration_layers_apply_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let lake = |name: &str| dir.path().join(name);
    let config = dir.path().join("simtally.toml");
    std::fs::write(
        &config,
        format!("lake = \"{}\"\nthreads = 1\n", lake("from-file").display()),
    )
    .unwrap();
    let events = shared_fixture("sample-1/events.ndjson");
    let ingest = |env_lake: Option<&std::path::Path>, flag_lake: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simtally"));
        command
            .env_remove("SIMTALLY_LAKE")
            .args(["--config"])
            .arg(&config);
        command
            .args(["ingest", "--no-progress", "--events"])
            .arg(&events);
        if let Some(path) = env_lake {
            command.env("SIMTALLY_LAKE", path);
        }
        if let Some(path) = flag_lake {
            command.arg("--lake").arg(path);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    ingest(None, None);
    assert!(
        lake("from-file").join("sim_events").exists(),
        "the file's lake"
    );
    ingest(Some(&lake("from-env")), None);
    assert!(
        lake("from-env").join("sim_events").exists(),
        "the variable beats the file"
    );
    ingest(Some(&lake("from-env-2")), Some(&lake("from-flag")));
    assert!(
        lake("from-flag").join("sim_events").exists(),
        "the flag beats both"
    );
    assert!(!lake("from-env-2").exists());

    std::fs::write(&config, "lakes = \"typo\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .arg("--config")
        .arg(&config)
        .args(["report", "--list"])
        .output()
        .unwrap();
    assert_clean_failure(&out, 2, "lakes");
    let out = simtally(&["--config", "/nonexistent/simtally.toml", "report", "--list"]);
    assert_clean_failure(&out, 2, "cannot read configuration file");
}

#[test]
fn sigterm_stops_an_ingest_without_committing_even_when_it_waits_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let events = shared_fixture("sample-1/events.ndjson");
    // stdin stays open and empty: the reader blocks in read() and never sees a next chunk.
    let mut child = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args(["ingest", "--no-progress", "--usage", "-", "--events"])
        .arg(&events)
        .arg("--lake")
        .arg(&lake)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The usage table is created just before usage is read.
    let created = lake.join("usage/_delta_log/00000000000000000000.json");
    for _ in 0..600 {
        if created.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(created.exists(), "the ingest never reached the usage pass");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Held open until the process is gone, so its read never returns.
    let stdin = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("terminated"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopped before the run finished"),
        "{}",
        stderr(&out)
    );
    assert!(!lake
        .join("usage/_delta_log/00000000000000000001.json")
        .exists());
}

/// Paths of a lake holding the reference fixture, an invoice directory and the price list.
struct Billable {
    lake: String,
    out_dir: String,
    prices: String,
}

fn billable_fixture(dir: &std::path::Path) -> Billable {
    let lake = dir.join("lake").display().to_string();
    let fixture = shared_fixture("sample-1");
    let (usage, events) = (fixture.join("usage.ndjson"), fixture.join("events.ndjson"));
    let ingest = simtally(&[
        "ingest",
        "--lake",
        &lake,
        "--no-progress",
        "--usage",
        usage.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    Billable {
        lake,
        out_dir: dir.join("invoices").display().to_string(),
        prices: common::testdata("prices.toml").display().to_string(),
    }
}

#[test]
fn invoice_issue_and_reconcile_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let Billable {
        lake,
        out_dir,
        prices,
    } = billable_fixture(dir.path());

    let invoice = |extra: &[&str]| {
        let mut args = vec![
            "invoice", "--lake", &lake, "--period", "2026-11", "--prices", &prices, "--out",
            &out_dir,
        ];
        args.extend_from_slice(extra);
        simtally(&args)
    };
    let first = invoice(&["--issue"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        stdout(&first).matches("issued now").count(),
        5,
        "{}",
        stdout(&first)
    );
    let html = std::fs::read_to_string(dir.path().join("invoices/101-2026-11.html")).unwrap();
    // testdata/prices.toml names a seller: the first Workspace's invoice is the first number.
    assert!(html.contains("<h1>Invoice ST-000001</h1>") && html.contains("@media print"));
    assert!(dir.path().join("invoices/101-2026-11.xml").exists());
    let again = invoice(&[]);
    assert_eq!(
        stdout(&again).matches("issued before (unchanged)").count(),
        5
    );

    let reconcile = simtally(&[
        "reconcile",
        "--lake",
        &lake,
        "--period",
        "2026-11",
        "--prices",
        &prices,
    ]);
    assert!(reconcile.status.success(), "{}", stdout(&reconcile));
    assert!(
        stdout(&reconcile).contains("balanced:"),
        "{}",
        stdout(&reconcile)
    );

    // Mistakes get one clear message each.
    let bad_period = simtally(&[
        "invoice", "--lake", &lake, "--period", "2026-13", "--prices", &prices,
    ]);
    assert_clean_failure(&bad_period, 2, "not a billing period like 2026-11");
    let no_prices = simtally(&["invoice", "--lake", &lake, "--period", "2026-11"]);
    assert_clean_failure(&no_prices, 2, "--prices");
    let missing = dir.path().join("missing.toml").display().to_string();
    let out = simtally(&[
        "invoice", "--lake", &lake, "--period", "2026-12", "--prices", &missing,
    ]);
    assert_clean_failure(&out, 1, "price list");
    let early = dir.path().join("early.toml");
    std::fs::write(
        &early,
        "[[tariff]]\nname = \"default\"\neffective_from = \"2027-01-01\"\ncurrency = \"EUR\"\n\
        sim_fee = \"1\"\nallowance_fee = \"1\"\nallowance_volume_mb = \"1\"\n",
    )
    .unwrap();
    let out = simtally(&[
        "invoice",
        "--lake",
        &lake,
        "--period",
        "2026-12",
        "--prices",
        early.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, 1, "no version of tariff 'default'");
    let nowhere = dir.path().join("nowhere").display().to_string();
    let out = simtally(&[
        "reconcile",
        "--lake",
        &nowhere,
        "--period",
        "2026-11",
        "--prices",
        &prices,
    ]);
    assert_clean_failure(&out, 1, "no lake at");
}

#[test]
fn an_issue_killed_between_its_commits_bills_nothing_and_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let Billable {
        lake,
        out_dir,
        prices,
    } = billable_fixture(dir.path());
    let args = [
        "invoice", "--lake", &lake, "--period", "2026-11", "--prices", &prices, "--out", &out_dir,
        "--issue",
    ];

    let killed = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args(args)
        .env("SIMTALLY_CRASH_AFTER_COMMIT", "issue:billed_slices")
        .output()
        .unwrap();
    assert!(
        !killed.status.success(),
        "the crash hook aborts after billed_slices"
    );
    let rows = query_csv(&lake, "SELECT COUNT(*) AS n FROM billed_slices");
    assert_ne!(rows.trim(), "n\n0", "the slices were committed: {rows}");

    // Nothing was issued: the month is still a draft, and the books balance.
    let draft = simtally(&[
        "invoice", "--lake", &lake, "--period", "2026-11", "--prices", &prices, "--out", &out_dir,
    ]);
    assert_eq!(
        stdout(&draft).matches(" draft ").count(),
        5,
        "{}",
        stdout(&draft)
    );
    let reconcile = |label: &str| {
        let out = simtally(&[
            "reconcile",
            "--lake",
            &lake,
            "--period",
            "2026-11",
            "--prices",
            &prices,
        ]);
        assert!(out.status.success(), "{label}: {}", stdout(&out));
    };
    reconcile("after the crash");

    let issued = simtally(&args);
    assert!(issued.status.success(), "{}", stderr(&issued));
    assert_eq!(stdout(&issued).matches("issued now").count(), 5);
    reconcile("after issuing again");
    // December finds nothing of November left to adjust.
    let december = simtally(&[
        "invoice", "--lake", &lake, "--period", "2026-12", "--prices", &prices, "--out", &out_dir,
    ]);
    assert!(december.status.success(), "{}", stderr(&december));
    assert!(
        !stdout(&december)
            .lines()
            .any(|l| l.contains("-2026-12") && !l.contains(" 0 adjustments")),
        "{}",
        stdout(&december)
    );
}

/// Lines too long to hold and instants outside the plausible range become dead letters with
/// their own reasons; both limits are set by flags (or the configuration's other layers).
#[test]
fn input_limits_turn_bad_lines_into_specific_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake").display().to_string();
    let record = |id: u64, at: &str| {
        format!(
            r#"{{"id": {id}, "traffic_type": {{"id": 6, "description": "SMS"}}, "start_timestamp": "{at}", "end_timestamp": "{at}", "sim": {{"iccid": "8988303000010001867"}}, "volume": {{"rx": 0, "tx": 1, "total": 1}}, "cost": 0.01, "currency": {{"code": "EUR"}}}}"#
        )
    };
    let long = format!(r#"{{"padding": "{}"}}"#, "x".repeat(20_000));
    let lines = [
        record(1, "2026-11-02T10:00:00Z"),
        record(2, "9999-12-31T10:00:00Z"),
        long,
        record(3, "2026-11-03T10:00:00Z"),
        record(5, "2016-12-31T23:59:60Z"),
    ];
    let usage = dir.path().join("usage.ndjson");
    std::fs::write(&usage, lines.join("\n") + "\n").unwrap();
    let out = simtally(&[
        "ingest",
        "--lake",
        &lake,
        "--no-progress",
        "--max-line-bytes",
        "8192",
        "--plausible-until",
        "2026-11-03",
        "--usage",
        usage.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let letters = query_csv(
        &lake,
        "SELECT source, reason FROM dead_letters ORDER BY source",
    );
    let path = std::fs::canonicalize(&usage).unwrap().display().to_string();
    assert_eq!(
        letters,
        format!(
            "source,reason\n{path}:2,implausible_timestamp\n{path}:3,line_too_long\n\
             {path}:4,implausible_timestamp\n"
        )
    );
    let kept = query_csv(&lake, "SELECT MAX(LENGTH(payload)) AS n FROM dead_letters");
    assert_eq!(kept, "n\n4096\n");
    // The leap second, the instant after 2016-12-31T23:59:59, is a record like any other.
    let quarantined = query_csv(
        &lake,
        "SELECT record_id, start_time FROM quarantine ORDER BY 1",
    );
    assert!(
        quarantined.contains("5,2017-01-01T00:00:00"),
        "{quarantined}"
    );
}
