//! Writers of one lake at the same time, and writers stopped between any two of their
//! commits: the lake ends exactly as one writer alone would leave it (the writer fence,
//! `lake::fence`). The real binary, started as an operator would start it; the oracle is
//! the reference fixture's expected totals.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::runs::{lake_url, sample, start_ingest, succeeded};
use common::{assert_sample_1_and_books, local_lake, rows};
use simtally::crash::{CommitPoint, WritePath};
use simtally::query::check_lake;

const AFTER_QUARANTINE: Option<CommitPoint> = Some(CommitPoint::new(WritePath::Pass, "quarantine"));

/// The sample's usage lines dealt round-robin into `n` files.
fn dealt_usage(dir: &Path, n: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(sample("usage")).unwrap();
    let mut parts = vec![String::new(); n];
    for (i, line) in text.lines().enumerate() {
        parts[i % n].push_str(line);
        parts[i % n].push('\n');
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(format!("usage-{i}.ndjson"));
            std::fs::write(&path, part).unwrap();
            path
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_of_the_same_input_at_the_same_time_equal_one_ingest() {
    for writers in [2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_url(&dir);
        let (usage, events) = (sample("usage"), sample("events"));
        let children: Vec<Child> = (0..writers)
            .map(|_| start_ingest(&lake, &[&usage], &[&events], None))
            .collect();
        for child in children {
            succeeded(child);
        }
        assert_sample_1_and_books(&local_lake(&dir)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_of_different_inputs_at_the_same_time_equal_them_in_turn() {
    for writers in [2, 3, 4] {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake_url(&dir);
        let events = sample("events");
        // Each writer brings a share of the usage and all the events, as nightly jobs of
        // several sources would.
        let parts = dealt_usage(dir.path(), writers);
        let children: Vec<Child> = parts
            .iter()
            .map(|part| start_ingest(&lake, &[part], &[&events], None))
            .collect();
        for child in children {
            succeeded(child);
        }
        assert_sample_1_and_books(&local_lake(&dir)).await;
    }
}

/// A pass stopped after its `quarantine` commit, then another writer's pass (one bad line:
/// it closes with a `usage` commit, so the fence no longer shows an unfinished pass), then
/// the first input again: the usage slices of the records the first pass cut are written,
/// because a cut record's quarantined slices without its usage slices are told by the rows
/// themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pass_is_completed_after_another_writer_closed() {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let (usage, events) = (sample("usage"), sample("events"));
    let stopped = start_ingest(&lake, &[&usage], &[&events], AFTER_QUARANTINE);
    assert!(!stopped.wait_with_output().unwrap().status.success());
    let other = dir.path().join("other.ndjson");
    std::fs::write(&other, "not json\n").unwrap();
    succeeded(start_ingest(&lake, &[&other], &[], None));
    succeeded(start_ingest(&lake, &[&usage], &[&events], None));
    assert_sample_1_and_books(&local_lake(&dir)).await;
}

const RECORD: &str = r#"{"id": 7000000003, "traffic_type": {"id": 5, "description": "Data"}, "start_timestamp": "2026-11-04T03:27:07.716Z", "end_timestamp": "2026-11-04T03:37:07.716Z", "sim": {"iccid": "8988303000010001867"}, "volume": {"rx": 22.816511, "tx": 0.949929, "total": 23.766440}, "cost": 0.0404039320, "currency": {"code": "EUR"}}"#;
const REGISTRATION: &str = r#"{"event_id": "r1", "type": "sim_registered", "timestamp": "2026-11-01T00:00:00Z", "iccid": "8988303000010001867", "workspace_id": 101}"#;

/// A quarantined record released by its late registration, the run stopped between its
/// `quarantine` commit (the release's reversal) and its `usage` commit (the record's new
/// slice): the record counts nowhere, `lake check` says so and what to do, and running the
/// events again completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_stopped_between_its_commits_is_found_and_completed() {
    let dir = tempfile::tempdir().unwrap();
    let lake_url = lake_url(&dir);
    let (usage, events) = (dir.path().join("u.ndjson"), dir.path().join("e.ndjson"));
    std::fs::write(&usage, format!("{RECORD}\n")).unwrap();
    std::fs::write(&events, format!("{REGISTRATION}\n")).unwrap();
    succeeded(start_ingest(&lake_url, &[&usage], &[], None));
    let stopped = start_ingest(&lake_url, &[], &[&events], AFTER_QUARANTINE);
    assert!(!stopped.wait_with_output().unwrap().status.success());

    let lake = local_lake(&dir);
    let checked = check_lake(&lake).await.unwrap();
    assert!(!checked.passes());
    let failed: Vec<_> = checked.checks.iter().filter(|c| c.count > 0).collect();
    assert_eq!(failed.len(), 1, "{checked}");
    assert_eq!(failed[0].offending, vec!["7000000003"]);
    let cli = Command::new(env!("CARGO_BIN_EXE_simtally"))
        .args(["lake", "check", "--lake", &lake_url])
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(1));
    let printed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        printed.contains("7000000003") && printed.contains("run the same ingest again"),
        "{printed}"
    );

    succeeded(start_ingest(&lake_url, &[], &[&events], None));
    let checked = check_lake(&lake).await.unwrap();
    assert!(checked.passes(), "{checked}");
    let counted = rows(
        &lake,
        "SELECT workspace_id, SUM(cost), SUM(volume_total) FROM usage GROUP BY 1",
    )
    .await;
    assert_eq!(counted, vec![vec!["101", "0.0404039320", "23.766440"]]);
    let quarantined = rows(&lake, "SELECT COUNT(*) FROM quarantine").await;
    assert_eq!(quarantined, vec![vec!["0"]]);
}

/// Issues of the same month started at once (a scheduler's overlapping runs, an operator's
/// manual run): each Workspace's month is sealed once, by one run; the others find it issued
/// and reproduce the same documents; the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_at_the_same_time_seal_each_month_once() {
    for writers in [2, 3, 4] {
        issues_at_the_same_time(writers).await;
    }
}

async fn issues_at_the_same_time(writers: usize) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    succeeded(start_ingest(
        &lake,
        &[&sample("usage")],
        &[&sample("events")],
        None,
    ));
    let prices = common::testdata("prices.toml").display().to_string();
    let outs: Vec<String> = (0..writers)
        .map(|i| dir.path().join(format!("out-{i}")).display().to_string())
        .collect();
    let children: Vec<Child> = outs
        .iter()
        .map(|out| {
            Command::new(env!("CARGO_BIN_EXE_simtally"))
                .args([
                    "invoice", "--lake", &lake, "--period", "2026-11", "--prices",
                ])
                .args([&prices, "--out", out, "--issue"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let printed: Vec<String> = children
        .into_iter()
        .map(|child| String::from_utf8_lossy(&succeeded(child).stdout).into_owned())
        .collect();
    let issued_now: usize = printed
        .iter()
        .map(|p| p.matches("issued now").count())
        .sum();
    assert_eq!(
        issued_now, 5,
        "each of the 5 Workspaces issued once: {printed:?}"
    );

    let lake_handle = local_lake(&dir);
    let sealed = rows(
        &lake_handle,
        "SELECT workspace_id, COUNT(*) FROM invoices GROUP BY 1 ORDER BY 1",
    )
    .await;
    let once: Vec<Vec<String>> = ["101", "102", "103", "201", "202"]
        .iter()
        .map(|ws| vec![ws.to_string(), "1".to_owned()])
        .collect();
    assert_eq!(sealed, once);
    for ws in ["101", "102", "103", "201", "202"] {
        let document = |out: &String| std::fs::read(format!("{out}/{ws}-2026-11.json")).unwrap();
        assert!(
            outs.iter().all(|out| document(out) == document(&outs[0])),
            "{ws}"
        );
    }
    assert_sample_1_and_books(&lake_handle).await;
}

/// Ingests with `lake compact` and `lake vacuum` running beside them: compaction commits no
/// data change and vacuum deletes only unreferenced files past the retention, so the lake
/// ends as the ingests alone leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_beside_compaction_and_vacuum_equal_the_ingests_alone() {
    // 2, 3 and 4 writers: an ingest and compact; an ingest, compact and vacuum; two
    // ingests, compact and vacuum.
    for (ingests, vacuum) in [(1, false), (1, true), (2, true)] {
        beside_compaction_and_vacuum(ingests, vacuum).await;
    }
}

async fn beside_compaction_and_vacuum(ingests: usize, vacuum: bool) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let events = sample("events");
    let parts = dealt_usage(dir.path(), 2 + ingests);
    // Two shares first, so there are small files to compact.
    succeeded(start_ingest(&lake, &[&parts[0]], &[&events], None));
    succeeded(start_ingest(&lake, &[&parts[1]], &[&events], None));
    let maintenance = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_simtally"))
            .args(args)
            .args(["--lake", &lake])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut running = vec![maintenance(&["lake", "compact"])];
    running.extend((parts[2..].iter()).map(|part| start_ingest(&lake, &[part], &[&events], None)));
    if vacuum {
        running.push(maintenance(&["lake", "vacuum"]));
    }
    for child in running {
        succeeded(child);
    }
    assert_sample_1_and_books(&local_lake(&dir)).await;
}

/// Ingests and `invoice --issue` of the same month at once: whatever the issue did not
/// see is billed on December's invoice as an adjustment to November, so for every Workspace
/// November's invoiced usage plus those adjustments is the fixture's cost, to the last
/// digit, and the books balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_beside_an_issue_bill_every_slice_once() {
    // 2, 3 and 4 writers: the issue and one to three ingests.
    for ingests in 1..=3 {
        ingests_beside_an_issue(ingests).await;
    }
}

async fn ingests_beside_an_issue(ingests: usize) {
    use rust_decimal::Decimal;
    use std::str::FromStr;
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let events = sample("events");
    let parts = dealt_usage(dir.path(), 1 + ingests);
    succeeded(start_ingest(&lake, &[&parts[0]], &[&events], None));
    let prices = common::testdata("prices.toml").display().to_string();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let invoice = |period: &str, folder: &str, issue: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simtally"));
        command.args([
            "invoice", "--lake", &lake, "--period", period, "--prices", &prices,
        ]);
        command.args(["--out", &out(folder)]);
        if issue {
            command.arg("--issue");
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let issuing = invoice("2026-11", "november", true);
    let ingesting: Vec<Child> = (parts[1..].iter())
        .map(|part| start_ingest(&lake, &[part], &[&events], None))
        .collect();
    succeeded(issuing);
    for child in ingesting {
        succeeded(child);
    }
    succeeded(invoice("2026-12", "december", false));

    let document = |folder: &str, id: &str| -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(format!("{}/{id}.json", out(folder))).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    };
    let decimal = |v: &serde_json::Value| Decimal::from_str(v.as_str().unwrap()).unwrap();
    let expected = common::sample_1_expected();
    for (ws, totals) in expected["workspaces"].as_object().unwrap() {
        let november = document("november", &format!("{ws}-2026-11")).unwrap();
        let mut billed = decimal(&november["totals"][0]["usage"]);
        if let Some(december) = document("december", &format!("{ws}-2026-12")) {
            for adjustment in december["adjustments"].as_array().unwrap() {
                if adjustment["kind"] == "usage" && adjustment["period"] == "2026-11" {
                    billed += decimal(&adjustment["amount"]);
                }
            }
        }
        assert_eq!(billed, decimal(&totals["cost"]), "Workspace {ws}");
    }
    assert_sample_1_and_books(&local_lake(&dir)).await;
}

/// A record cut by its SIM's registration (the time before it quarantined, the rest
/// attributed), its pass stopped after `quarantine`; then the same input again with a
/// transfer inside the attributed part. The record ends cut in three, each part once:
/// quarantined before the registration, Workspace 101 until the transfer, 102 after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_stored_record_whose_sim_moves_before_the_rerun_is_cut_once() {
    use common::wire;
    let dir = tempfile::tempdir().unwrap();
    let lake_url = lake_url(&dir);
    let iccid = "8988303000010001867";
    let (usage, events) = (dir.path().join("u.ndjson"), dir.path().join("e.ndjson"));
    let record = wire::usage(
        7000000009,
        iccid,
        "2026-11-04T03:00:00Z",
        "2026-11-04T03:30:00Z",
        "0.30",
    );
    let registration = wire::registered("r1", "2026-11-04T03:10:00Z", iccid, 101);
    std::fs::write(&usage, format!("{record}\n")).unwrap();
    std::fs::write(&events, format!("{registration}\n")).unwrap();
    let stopped = start_ingest(&lake_url, &[&usage], &[&events], AFTER_QUARANTINE);
    assert!(!stopped.wait_with_output().unwrap().status.success());
    let half = rows(&local_lake(&dir), "SELECT slice, cost FROM quarantine").await;
    assert_eq!(
        half,
        vec![vec!["1", "0.1000000000"]],
        "the cut's first part only"
    );

    let transfer = wire::transferred("t1", "2026-11-04T03:20:00Z", iccid, 101, 102);
    std::fs::write(&events, format!("{registration}\n{transfer}\n")).unwrap();
    succeeded(start_ingest(&lake_url, &[&usage], &[&events], None));

    let lake = local_lake(&dir);
    let checked = check_lake(&lake).await.unwrap();
    assert!(checked.passes(), "{checked}");
    // 10 minutes each, of 30: a third of the cost each.
    let counted = rows(
        &lake,
        "SELECT workspace_id, SUM(cost) FROM usage GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(
        counted,
        vec![vec!["101", "0.1000000000"], vec!["102", "0.1000000000"]]
    );
    let quarantined = rows(&lake, "SELECT SUM(cost) FROM quarantine").await;
    assert_eq!(quarantined, vec![vec!["0.1000000000"]]);
}
