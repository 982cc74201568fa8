//! Golden tests for every named report in `sql/`: each `testdata/golden/cases/NAME.case`
//! runs one report over the lake built from `testdata/golden/input/`, and its CSV output
//! must equal `NAME.csv` byte for byte.
//!
//! To accept new output on purpose: `SIMTALLY_BLESS=1 cargo test --test hermetic golden`, then
//! review the diff of `testdata/golden/cases/` before committing.

use crate::common;

use std::path::{Path, PathBuf};

use common::{ingest_files, local_lake, testdata};
use simtally::domain::WorkspaceId;
use simtally::query::{
    run_report, session_memory_bytes, write_batches, OutputFormat, Report, Scope, REPORTS,
};

struct Case {
    name: String,
    report: String,
    scope: Scope,
}

fn parse_case(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let mut report = None;
    let mut scope = Scope::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line.split_once('=').expect("key = value");
        let value = value.trim();
        match key.trim() {
            "report" => report = Some(value.to_owned()),
            "workspaces" => {
                scope.workspaces = value
                    .split_whitespace()
                    .map(|w| w.parse::<WorkspaceId>().unwrap())
                    .collect()
            }
            "from" => scope.from = Some(value.parse().unwrap()),
            "to" => scope.to = Some(value.parse().unwrap()),
            other => panic!("{}: unknown key {other}", path.display()),
        }
    }
    Case {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        report: report.unwrap_or_else(|| panic!("{}: no report", path.display())),
        scope,
    }
}

fn cases() -> Vec<(Case, PathBuf)> {
    let dir = testdata("golden/cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| (parse_case(&p), p.with_extension("csv")))
        .collect()
}

#[test]
fn every_report_has_a_golden_case() {
    let covered: Vec<String> = cases().into_iter().map(|(c, _)| c.report).collect();
    for report in REPORTS {
        assert!(
            covered.iter().any(|c| c == report.name),
            "no golden case for report {}",
            report.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_match_their_golden_output() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    ingest_files(
        &lake,
        &[
            testdata("golden/input/usage.ndjson"),
            // A few records billed in USD: every report keeps currencies apart.
            testdata("golden/input/usage-usd.ndjson"),
        ],
        &[testdata("golden/input/events.ndjson")],
    )
    .await;
    let bless = std::env::var_os("SIMTALLY_BLESS").is_some();
    let mut mismatches = Vec::new();
    for (case, expected_path) in cases() {
        let report =
            Report::find(&case.report).unwrap_or_else(|| panic!("{}: unknown report", case.name));
        let batches = run_report(&lake, report, &case.scope, session_memory_bytes())
            .await
            .unwrap();
        let mut csv = Vec::new();
        write_batches(&batches, OutputFormat::Csv, &mut csv).unwrap();
        let got = String::from_utf8(csv).unwrap();
        assert!(
            got.lines().count() > 1,
            "{}: the golden case should return rows",
            case.name
        );
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "missing {}; run with SIMTALLY_BLESS=1",
                expected_path.display()
            )
        });
        if got != want {
            mismatches.push(format!(
                "--- {} expected\n{want}\n+++ got\n{got}",
                case.name
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches:\n{}",
        mismatches.join("\n")
    );
}
