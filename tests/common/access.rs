//! The access fixture: organization 1 (the Pro package: three Workspaces) links its own
//! 101 and 102 and organization 3's 103; 104, organization 3's too, stays unlinked; 201
//! belongs to organization 2. Olga observes 101; Adam administers 101 and
//! 102; Sara is organization 1's SuperAdmin and observes 201. One SIM per Workspace, with
//! usage on two days whose cost tells the Workspaces apart.

use std::path::{Path, PathBuf};

use super::wire;

pub const WORKSPACES: [i64; 5] = [101, 102, 103, 104, 201];

/// The SIM registered to `workspace`.
pub fn iccid(workspace: i64) -> String {
    format!("8988303000000000{workspace}")
}

/// The cost of each usage record of `workspace`: its id in cents, so sums say whose rows
/// they are.
pub fn cost(workspace: i64) -> String {
    format!("{}.{:02}", workspace / 100, workspace % 100)
}

pub fn directory_lines() -> Vec<String> {
    let at = "2026-09-30T00:00:00Z";
    let mut lines = Vec::new();
    for (i, ws) in WORKSPACES.iter().enumerate() {
        let organization = match ws {
            101 | 102 => 1,
            103 | 104 => 3,
            _ => 2,
        };
        lines.push(wire::workspace_created(
            &format!("d-create-{i}"),
            at,
            *ws,
            organization,
        ));
    }
    for ws in [101, 102, 103] {
        lines.push(wire::linked(&format!("d-link-{ws}"), at, 1, ws));
    }
    lines.extend([
        wire::superadmin("d-super", at, 1, "sara"),
        wire::granted("d-sara-201", at, "sara", 201, "Observer"),
        wire::granted("d-olga-101", at, "olga", 101, "Observer"),
        wire::granted("d-adam-101", at, "adam", 101, "Administrator"),
        wire::granted("d-adam-102", at, "adam", 102, "Administrator"),
    ]);
    lines
}

/// Directory events that break a rule: a fourth Workspace for organization 1, removing the
/// SuperAdmin.
pub fn refused_lines() -> Vec<String> {
    let at = "2026-09-30T01:00:00Z";
    vec![
        wire::linked("d-link-104", at, 1, 104),
        wire::revoked("d-revoke-sara", at, "sara", 101),
    ]
}

/// One SIM per Workspace, and one more that moves from 101 to 201 (without usage).
pub fn sim_lines() -> Vec<String> {
    let mut lines: Vec<String> = WORKSPACES
        .iter()
        .map(|ws| wire::registered(&format!("s-{ws}"), "2026-10-01T00:00:00Z", &iccid(*ws), *ws))
        .collect();
    let moving = iccid(999);
    lines.push(wire::registered(
        "s-moving",
        "2026-10-01T00:00:00Z",
        &moving,
        101,
    ));
    lines.push(wire::transferred(
        "s-moved",
        "2026-10-04T00:00:00Z",
        &moving,
        101,
        201,
    ));
    lines
}

pub fn usage_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (i, ws) in WORKSPACES.iter().enumerate() {
        for (day, date) in ["2026-10-02", "2026-10-03"].iter().enumerate() {
            let id = 1000 + (i as u64) * 10 + day as u64;
            let start = format!("{date}T10:00:00Z");
            let end = format!("{date}T10:05:00Z");
            lines.push(wire::usage(id, &iccid(*ws), &start, &end, &cost(*ws)));
        }
    }
    lines
}

pub fn write(path: &Path, lines: &[String]) -> PathBuf {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    path.to_path_buf()
}

/// Writes the fixture's (usage, events) files into `dir`.
pub fn write_fixture(dir: &Path) -> (PathBuf, PathBuf) {
    let events = [directory_lines(), refused_lines(), sim_lines()].concat();
    (
        write(&dir.join("usage.ndjson"), &usage_lines()),
        write(&dir.join("events.ndjson"), &events),
    )
}
