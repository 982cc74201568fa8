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

/// The arguments of `simtally ingest` of these files.
pub fn ingest_args<'a>(lake: &'a str, usage: &[&'a Path], events: &[&'a Path]) -> Vec<&'a str> {
    let mut args = vec!["ingest", "--lake", lake, "--no-progress"];
    for file in usage {
        args.extend(["--usage", file.to_str().unwrap()]);
    }
    for file in events {
        args.extend(["--events", file.to_str().unwrap()]);
    }
    args
}

/// `simtally ingest` of these files, started and not waited for.
pub fn start_ingest(
    lake: &str,
    usage: &[&Path],
    events: &[&Path],
    crash_after: Option<CommitPoint>,
) -> Child {
    start(&ingest_args(lake, usage, events), crash_after)
}

/// How a run is stopped before it finishes.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Aborted right after this commit.
    At(CommitPoint),
    /// Killed (SIGKILL) this long after it started, whatever it is doing then.
    Killed(std::time::Duration),
}

impl Stop {
    /// Runs `simtally ARGS` stopped so. False if it was to stop at a commit point and
    /// finished without reaching it.
    pub fn run(self, args: &[&str]) -> bool {
        match self {
            Stop::At(point) => stopped_at(start(args, Some(point)), point),
            Stop::Killed(after) => {
                let mut child = start(args, None);
                // The moment of the kill is what is random here; nothing waits for an outcome.
                std::thread::sleep(after);
                let _ = child.kill();
                let _ = child.wait();
                true
            }
        }
    }
}

/// `n` moments from 0 to `below_ms` milliseconds, drawn from a fixed seed.
pub fn seeded_moments(seed: u64, n: usize, below_ms: u64) -> Vec<std::time::Duration> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            std::time::Duration::from_millis((state >> 33) % below_ms)
        })
        .collect()
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
