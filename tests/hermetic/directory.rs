//! Directory events through `ingest`: validated, kept with their history in `workspaces`
//! and `memberships`, refused to dead letters with the rule they break.

use crate::common;

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
    assert!(
        letters[0][2].contains("already has 3 Workspaces"),
        "{letters:?}"
    );
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
            // 103 is another organization's: she reached it only as SuperAdmin.
            wire::unlinked("d-unlink-103", "2026-10-06T00:00:00Z", 1, 103),
            wire::linked("d-link-104", "2026-10-06T00:00:01Z", 1, 104),
            wire::unlinked("d-unlink-104", "2026-10-07T00:00:00Z", 1, 104),
            // 101 is organization 1's own: access it had before any link.
            wire::unlinked("d-unlink-101", "2026-10-07T00:00:01Z", 1, 101),
        ],
    );
    let summary = ingest_files(&lake, &[], &[later]).await;
    assert_eq!(summary.events.directory, 5);
    assert_eq!(
        access_of(&lake, "sara").await,
        vec![
            (101, Role::Administrator),
            (102, Role::SuperAdmin),
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

/// Every directory event and every transfer that names a person is checked against that
/// person's roles at its instant, whoever wrote it to the topic; what a rule forbids is a
/// `not_allowed` dead letter, and `dead-letters replay` offers it to the events decoder
/// again once the rights are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_hold_at_ingest_for_every_actor_and_refused_events_replay() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let (usage, events) = write_fixture(dir.path());
    ingest_files(&lake, &[usage], &[events]).await;

    let (moving, held) = (access::iccid(101), access::iccid(102));
    let at = |minute: u32| format!("2026-10-10T00:{minute:02}:00Z");
    let later = access::write(
        &dir.path().join("actors.ndjson"),
        &[
            // adam administers 101: he invites there, not in 103.
            wire::by(&wire::granted("a-1", &at(1), "ivy", 101, "User"), "adam"),
            wire::by(&wire::granted("a-2", &at(2), "ivy", 103, "User"), "adam"),
            // An Observer invites no one; only operators link.
            wire::by(
                &wire::granted("a-3", &at(3), "ivy", 101, "Administrator"),
                "olga",
            ),
            wire::by(&wire::linked("a-4", &at(4), 2, 104), "sara"),
            // adam manages 102 but not 201; sara, the SuperAdmin, manages 101 and 103.
            wire::by(&wire::transferred("a-5", &at(5), &held, 102, 201), "adam"),
            wire::by(&wire::transferred("a-6", &at(6), &moving, 101, 103), "sara"),
        ],
    );
    let summary = ingest_files(&lake, &[], &[later]).await;
    assert_eq!(summary.events.accepted, 2, "{summary:?}");
    assert_eq!(summary.events.dead_letters, 4);
    assert!(summary.events.is_conserved());
    let refused = rows(
        &lake,
        "SELECT source, detail FROM dead_letters WHERE reason = 'not_allowed' ORDER BY source",
    )
    .await;
    let sources: Vec<&str> = refused
        .iter()
        .map(|r| r[0].rsplit(':').next().unwrap())
        .collect();
    assert_eq!(sources, ["2", "3", "4", "5"], "{refused:?}");
    assert!(refused[3][1].contains("Workspace 201"), "{refused:?}");
    assert_eq!(
        rows(
            &lake,
            "SELECT event_id FROM sim_events WHERE event_id LIKE 'a-%'"
        )
        .await,
        [["a-6"]]
    );
    assert!(access_of(&lake, "ivy").await.contains(&(101, Role::User)));

    // Once adam manages 201 too, his transfer replays from its dead letter: accepted
    // under its first coordinates; the others fail again and are not stored twice.
    let grant = access::write(
        &dir.path().join("grant.ndjson"),
        &[wire::granted("a-7", &at(7), "adam", 201, "Administrator")],
    );
    ingest_files(&lake, &[], &[grant]).await;
    let options = IngestOptions {
        threads: 2,
        progress: false,
        ..IngestOptions::default()
    };
    let replayed =
        simtally::pipeline::replay_dead_letters(&lake, &options, CancellationToken::new())
            .await
            .unwrap();
    assert_eq!(replayed.events.accepted, 1, "{replayed:?}");
    let stored = rows(
        &lake,
        "SELECT event_id, source FROM sim_events WHERE event_id LIKE 'a-%' ORDER BY event_id",
    )
    .await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored[0][1].ends_with("actors.ndjson:5"), "{stored:?}");
    assert_eq!(
        rows(
            &lake,
            "SELECT COUNT(*) FROM dead_letters WHERE reason = 'not_allowed'"
        )
        .await,
        [["4"]]
    );
}

/// Through events: an organization on the Free package has one Workspace; when one on the
/// Pro package first links another's Workspace, its longest-standing Administrator becomes
/// its SuperAdmin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_and_the_default_superadmin_through_events() {
    let dir = tempfile::tempdir().unwrap();
    let lake = local_lake(&dir);
    let at = |hour: u32| format!("2026-10-01T{hour:02}:00:00Z");
    let events = access::write(
        &dir.path().join("orgs.ndjson"),
        &[
            wire::workspace_created("o-1", &at(0), 501, 5),
            wire::workspace_created("o-2", &at(0), 601, 6),
            wire::workspace_created("o-3", &at(0), 701, 7),
            // Organization 7 is on the Free package: no second Workspace.
            wire::workspace_created("o-4", &at(1), 702, 7),
            wire::granted("o-5", &at(2), "carl", 501, "Administrator"),
            wire::granted("o-6", &at(1), "bea", 501, "Administrator"),
            wire::granted("o-7", &at(0), "dan", 601, "Administrator"),
            wire::linked("o-8", &at(3), 5, 501),
            wire::linked("o-9", &at(4), 5, 601),
        ],
    );
    let summary = ingest(
        &lake,
        IngestOptions {
            events: vec![Input::File(events)],
            threads: 2,
            link_limits: LinkLimits::default().with("7=free".parse().unwrap()),
            ..IngestOptions::default()
        },
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.events.dead_letters, 1, "{summary:?}");
    let refused = rows(&lake, "SELECT detail FROM dead_letters").await;
    assert!(
        refused[0][0].contains("organization 7 already has 1 Workspaces"),
        "{refused:?}"
    );
    // bea has been Administrator of organization 5's own Workspace longer than carl; dan
    // administers 601, another organization's.
    assert_eq!(
        access_of(&lake, "bea").await,
        vec![(501, Role::SuperAdmin), (601, Role::SuperAdmin)]
    );
    assert_eq!(
        access_of(&lake, "carl").await,
        vec![(501, Role::Administrator)]
    );
}
