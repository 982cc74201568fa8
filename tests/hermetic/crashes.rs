//! The crash matrix: every commit point of every path, from the code's own lists
//! (`simtally::crash::commit_points`), so a commit added to a path is stopped at here
//! without editing this file. For each point, each scenario of its path is run by the real
//! binary, aborted right after that commit, then run again; the lake must be exact by the
//! scenario's own model and `lake check` must pass.

use crate::common;

use std::path::Path;

use common::access::{self, WORKSPACES};
use common::runs::{
    ingest_args, lake_url, sample, seeded_moments, start, start_ingest, succeeded, Stop,
};
use common::{assert_sample_1_and_books, local_lake, rows, split_sample_events, testdata};
use rust_decimal::Decimal;
use simtally::crash::{commit_points, WritePath};
use simtally::domain::UtcMillis;
use simtally::domain::{Reason, Rejection};
use simtally::lake::{Lake, LakeTable};
use simtally::query::check_lake;
use simtally::tables::dead_letters::{DeadLetter, DeadLetterRows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_commit_point_of_every_path_is_completed_by_running_again() {
    for point in commit_points() {
        run_path(point.path, Stop::At(point)).await;
    }
}

/// The same scenarios killed (SIGKILL) at moments drawn from a fixed seed: before, between
/// or after any commit, or in the middle of writing a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_killed_at_seeded_moments_is_completed_by_running_again() {
    for path in WritePath::ALL {
        for after in seeded_moments(0x5eed ^ path as u64, 3, 800) {
            run_path(path, Stop::Killed(after)).await;
        }
    }
}

async fn run_path(path: WritePath, stop: Stop) {
    match path {
        WritePath::Pass => {
            first_ingest(stop).await;
            late_events(stop).await;
            directory_events(stop).await;
            replay(stop).await;
        }
        WritePath::Issue => issue(stop).await,
        WritePath::Compact => compact(stop).await,
    }
}

async fn assert_checked(lake: &Lake) {
    let checked = check_lake(lake).await.unwrap();
    assert!(checked.passes(), "{checked}");
}

/// The first ingest of the fixture.
async fn first_ingest(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let (usage, events) = (sample("usage"), sample("events"));
    let args = ingest_args(&lake, &[&usage], &[&events]);
    assert!(stop.run(&args), "a first ingest reaches {stop:?}");
    succeeded(start_ingest(&lake, &[&usage], &[&events], None));
    assert_sample_1_and_books(&local_lake(&dir)).await;
}

/// Usage first, then its registrations, then the later events stopped: corrections of
/// transfers and quarantine releases span `quarantine` and `usage`.
async fn late_events(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let (registrations, later) = split_sample_events(dir.path());
    succeeded(start_ingest(&lake, &[&sample("usage")], &[], None));
    succeeded(start_ingest(&lake, &[], &[&registrations], None));
    let args = ingest_args(&lake, &[], &[&later]);
    assert!(stop.run(&args), "late events reach {stop:?}");
    succeeded(start_ingest(&lake, &[], &[&later], None));
    assert_sample_1_and_books(&local_lake(&dir)).await;
}

/// Directory events (Workspaces, links, roles, two that break a rule) with usage.
async fn directory_events(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let (usage, events) = access::write_fixture(dir.path());
    let args = ingest_args(&lake, &[&usage], &[&events]);
    assert!(stop.run(&args), "directory events reach {stop:?}");
    succeeded(start_ingest(&lake, &[&usage], &[&events], None));

    let lake = local_lake(&dir);
    // The model: 5 Workspaces created and 3 linked, 5 grants, 2 refused; two records of
    // each Workspace's SIM costing its id in cents.
    let history = rows(
        &lake,
        "SELECT (SELECT COUNT(*) FROM workspaces) AS w, \
         (SELECT COUNT(*) FROM memberships) AS m, (SELECT COUNT(*) FROM dead_letters) AS d",
    )
    .await;
    assert_eq!(history, vec![vec!["8", "5", "2"]], "after {stop:?}");
    let sums = rows(
        &lake,
        "SELECT workspace_id, COUNT(*), SUM(cost) FROM usage GROUP BY 1 ORDER BY 1",
    )
    .await;
    let sums: Vec<(String, String, Decimal)> = sums
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].parse().unwrap()))
        .collect();
    let want: Vec<(String, String, Decimal)> = WORKSPACES
        .iter()
        .map(|ws| {
            let cost: Decimal = access::cost(*ws).parse().unwrap();
            (ws.to_string(), "2".into(), cost * Decimal::TWO)
        })
        .collect();
    assert_eq!(sums, want, "after {stop:?}");
    assert_checked(&lake).await;
}

/// `dead-letters replay` of a valid record an older version left as a dead letter: the
/// fixture's first line under a new id.
async fn replay(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake_dir = lake_url(&dir);
    let (usage, events) = (sample("usage"), sample("events"));
    succeeded(start_ingest(&lake_dir, &[&usage], &[&events], None));
    let lake = local_lake(&dir);
    let first_line = std::fs::read_to_string(&usage).unwrap();
    let mut record: serde_json::Value =
        serde_json::from_str(first_line.lines().next().unwrap()).unwrap();
    record["id"] = 9_000_000_001u64.into();
    store_dead_letter(&lake, record.to_string()).await;

    let args = ["dead-letters", "replay", "--lake", &lake_dir];
    assert!(stop.run(&args), "replay reaches {stop:?}");
    succeeded(start(&args, None));
    // The cost as written in the line, not through a float.
    let line = first_line.lines().next().unwrap();
    let cost = line
        .split("\"cost\": ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let found = rows(
        &lake,
        "SELECT CAST(SUM(cost) AS VARCHAR) FROM usage WHERE record_id = 9000000001",
    )
    .await;
    let want: Decimal = cost.parse().unwrap();
    let got: Decimal = found[0][0].parse().unwrap();
    assert_eq!(got, want, "the replayed record once, after {stop:?}");
    assert_checked(&lake).await;
}

fn decimal(value: &serde_json::Value) -> Decimal {
    value.as_str().unwrap().parse().unwrap()
}

async fn store_dead_letter(lake: &Lake, payload: String) {
    let mut letters = DeadLetterRows::new(UtcMillis::from_millis(0));
    letters.append(&DeadLetter {
        source: "/old/usage.ndjson:77".into(),
        rejection: Rejection::new(Reason::NotJson, "rejected by an older version".into()),
        payload: payload.into_bytes(),
        key: None,
        input: simtally::tables::dead_letters::LetterInput::Usage,
    });
    let mut appender = lake.appender(LakeTable::DeadLetters).await.unwrap();
    appender.write(letters.finish()).await.unwrap();
    appender.commit(Vec::new()).await.unwrap();
}

/// `invoice --issue` of November: after the stop and a second run, each Workspace's
/// invoice is issued once and bills the fixture's cost; December adjusts nothing.
async fn issue(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    succeeded(start_ingest(
        &lake,
        &[&sample("usage")],
        &[&sample("events")],
        None,
    ));
    let prices = testdata("prices.toml").display().to_string();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let (november, december) = (out("november"), out("december"));
    let issue = [
        "invoice", "--lake", &lake, "--period", "2026-11", "--prices", &prices, "--out", &november,
        "--issue",
    ];
    assert!(stop.run(&issue), "an issue reaches {stop:?}");
    succeeded(start(&issue, None));
    let draft = [
        "invoice", "--lake", &lake, "--period", "2026-12", "--prices", &prices, "--out", &december,
    ];
    succeeded(start(&draft, None));

    let lake = local_lake(&dir);
    let expected = common::sample_1_expected();
    let workspaces = expected["workspaces"].as_object().unwrap();
    let sealed = rows(
        &lake,
        "SELECT COUNT(*), COUNT(DISTINCT workspace_id) FROM invoices",
    )
    .await;
    let n = workspaces.len().to_string();
    assert_eq!(sealed, vec![vec![n.clone(), n]], "after {stop:?}");
    for (ws, totals) in workspaces {
        let read = |folder: &str, period: &str| -> Option<serde_json::Value> {
            let text = std::fs::read_to_string(format!("{folder}/{ws}-{period}.json")).ok()?;
            Some(serde_json::from_str(&text).unwrap())
        };
        let invoice = read(&november, "2026-11").unwrap();
        assert_eq!(
            decimal(&invoice["totals"][0]["usage"]),
            decimal(&totals["cost"]),
            "{ws} after {stop:?}"
        );
        if let Some(next) = read(&december, "2026-12") {
            let adjustments = next["adjustments"].as_array().map_or(0, Vec::len);
            assert_eq!(adjustments, 0, "{ws} after {stop:?}");
        }
    }
    assert_sample_1_and_books(&lake).await;
}

/// `lake compact` of a lake written in two shares (small files to merge): the rows and
/// sums stay the fixture's. A table the lake does not have is not compacted, so its
/// point is not reached.
async fn compact(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let lake = lake_url(&dir);
    let events = sample("events");
    let text = std::fs::read_to_string(sample("usage")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let shares: Vec<_> = [first, second]
        .iter()
        .enumerate()
        .map(|(i, share)| {
            let path = dir.path().join(format!("usage-{i}.ndjson"));
            std::fs::write(&path, share.join("\n") + "\n").unwrap();
            path
        })
        .collect();
    for share in &shares {
        succeeded(start_ingest(&lake, &[Path::new(share)], &[&events], None));
    }
    let args = ["lake", "compact", "--lake", &lake];
    let reached = stop.run(&args);
    let handle = local_lake(&dir);
    if let Stop::At(point) = stop {
        let table = LakeTable::ALL
            .into_iter()
            .find(|t| t.name() == point.step)
            .unwrap();
        let exists = handle.open(table).await.unwrap().is_some();
        assert_eq!(
            reached, exists,
            "compaction reaches {point} when the table exists"
        );
    }
    succeeded(start(&args, None));
    assert_sample_1_and_books(&handle).await;
}
