//! Directory events through `ingest`: validated, kept with their history in `workspaces`
//! and `memberships`, refused to dead letters with the rule they break.

mod common;

use common::access::{self, write_fixture};
use common::{ingest_files, local_lake, rows, wire};
use simtally::directory::{load_directory, LinkLimits, OrganizationLimit};
use simtally::domain::{Role, UserId};
use simtally::lake::Lake;
use simtally::pipeline::{ingest, IngestOptions};
use simtally::source::Input;
use tokio_util::sync::CancellationToken;

/// Rows in `workspaces` and `memberships`.
async fn history_rows(lake: &Lake) -> Vec<Vec<String>> {
    rows(
        lake,
        "SELECT (SELECT COUNT(*) FROM workspaces) AS w, (SELECT COUNT(*) FROM memberships) AS m",
    )
    .await
}

async fn access_of(lake: &Lake, user: &str) -> Vec<(i64, Role)> {
    let stored = load_directory(lake, LinkLimits::default()).await.unwrap();
    stored
        .directory
        .access(&UserId::parse(user).unwrap())
        .into_iter()
        .map(|(w, r)| (w.get(), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_events_are_kept_and_rule_breakers_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    let summary = ingest_files(
        &lake,
        std::slice::from_ref(&usage),
        std::slice::from_ref(&events),
    )
    .await;

    let directory_events = access::directory_lines().len() as u64;
    assert_eq!(summary.events.directory, directory_events);
    assert_eq!(summary.events.dead_letters, 2);
    assert!(summary.events.is_conserved());

    let letters = rows(
        &lake,
        "SELECT source, reason, detail FROM dead_letters ORDER BY source",
    )
    .await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters.iter().all(|l| l[1] == "directory_rule"));
    assert!(letters[0][2].contains("already links 3"), "{letters:?}");
    assert!(
        letters[1][2].contains("cannot be changed or removed"),
        "{letters:?}"
    );

    let history = history_rows(&lake).await;
    assert_eq!(history, vec![vec!["8".to_string(), "5".to_string()]]);

    assert_eq!(access_of(&lake, "olga").await, vec![(101, Role::Observer)]);
    assert_eq!(
        access_of(&lake, "adam").await,
        vec![(101, Role::Administrator), (102, Role::Administrator)]
    );
    assert_eq!(
        access_of(&lake, "sara").await,
        vec![
            (101, Role::SuperAdmin),
            (102, Role::SuperAdmin),
            (103, Role::SuperAdmin),
            (201, Role::Observer)
        ]
    );

    // Again: every event is a duplicate and the history does not grow.
    let again = ingest_files(&lake, &[usage], &[events]).await;
    assert_eq!(again.events.accepted, 0);
    let history_again = history_rows(&lake).await;
    assert_eq!(history_again, history);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlink_in_a_later_run_ends_the_superadmin_access_it_gave() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;

    let later = access::write(
        &dir.path().join("unlink.ndjson"),
        &[
            wire::granted("d-sara-104", "2026-10-05T00:00:00Z", "sara", 104, "User"),
            wire::unlinked("d-unlink-101", "2026-10-06T00:00:00Z", 1, 101),
            wire::linked("d-link-104-again", "2026-10-06T00:00:01Z", 1, 104),
            wire::unlinked("d-unlink-104", "2026-10-07T00:00:00Z", 1, 104),
        ],
    );
    let summary = ingest_files(&lake, &[], &[later]).await;
    assert_eq!(summary.events.directory, 4);
    assert_eq!(
        access_of(&lake, "sara").await,
        vec![
            (102, Role::SuperAdmin),
            (103, Role::SuperAdmin),
            // Hers before it was linked, so it stays hers, as Administrator.
            (104, Role::Administrator),
            (201, Role::Observer)
        ]
    );
    // Others keep what they had.
    assert_eq!(access_of(&lake, "olga").await, vec![(101, Role::Observer)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_link_limit_accepts_the_fourth_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    let limit: OrganizationLimit = "1=4".parse().unwrap();
    let summary = ingest(
        &lake,
        IngestOptions {
            usage: vec![Input::File(usage)],
            events: vec![Input::File(events)],
            threads: 2,
            link_limits: LinkLimits::default().with(limit),
            ..IngestOptions::default()
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.events.dead_letters, 1);
    assert!(access_of(&lake, "sara")
        .await
        .contains(&(104, Role::SuperAdmin)));
}
