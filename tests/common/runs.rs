//! The real binary, started as an operator would start it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use simtally::crash::{CommitPoint, CRASH_AFTER_COMMIT};

use super::shared_fixture;

/// A file of the reference fixture sample-1 (`usage` or `events`).
pub fn sample(name: &str) -> PathBuf {
    shared_fixture(&format!("sample-1/{name}.ndjson"))
}

pub fn lake_url(dir: &tempfile::TempDir) -> String {
    dir.path().join("lake").display().to_string()
}

/// `simtally ARGS`, stopped right after `crash_after` if given, started and not waited for.
pub fn start(args: &[&str], crash_after: Option<CommitPoint>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_simtally"));
    command.args(args);
    if let Some(point) = crash_after {
        command.env(CRASH_AFTER_COMMIT, point.to_string());
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `simtally ingest` of these files, started and not waited for.
pub fn start_ingest(
    lake: &str,
    usage: &[&Path],
    events: &[&Path],
    crash_after: Option<CommitPoint>,
) -> Child {
    let mut args = vec!["ingest", "--lake", lake, "--no-progress"];
    for file in usage {
        args.extend(["--usage", file.to_str().unwrap()]);
    }
    for file in events {
        args.extend(["--events", file.to_str().unwrap()]);
    }
    start(&args, crash_after)
}

pub fn succeeded(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits for a run started with `crash_after`; true if it aborted at that point.
pub fn stopped_at(child: Child, point: CommitPoint) -> bool {
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let aborted = said.contains(&format!("{CRASH_AFTER_COMMIT}={point}: aborting"));
    assert!(
        aborted || out.status.success(),
        "neither stopped at {point} nor succeeded: {said}"
    );
    aborted
}
