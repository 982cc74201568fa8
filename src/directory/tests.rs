use super::*;
use crate::domain::Actor;

fn ws(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

fn org(id: i64) -> OrganizationId {
    OrganizationId::new(id).unwrap()
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
}

/// A change made by an operator (who may make any).
fn op(change: DirectoryChange) -> DirectoryEvent {
    by(Actor::Operator("noc".into()), change, 0)
}

/// A change made by `actor`, `minute` minutes into the day.
fn by(actor: Actor, change: DirectoryChange, minute: i64) -> DirectoryEvent {
    DirectoryEvent {
        event_id: format!("{change:?}"),
        at: UtcMillis::from_millis(minute * 60_000),
        change,
        actor: Some(actor),
    }
}

fn person(name: &str) -> Actor {
    Actor::User(user(name))
}

fn created(id: i64, organization: i64) -> DirectoryChange {
    DirectoryChange::WorkspaceCreated {
        workspace: ws(id),
        name: format!("Workspace {id}"),
        organization: org(organization),
    }
}

fn linked(organization: i64, id: i64) -> DirectoryChange {
    DirectoryChange::WorkspacesLinked {
        organization: org(organization),
        workspace: ws(id),
    }
}

fn unlinked(organization: i64, id: i64) -> DirectoryChange {
    DirectoryChange::WorkspaceUnlinked {
        organization: org(organization),
        workspace: ws(id),
    }
}

fn granted(name: &str, id: i64, role: Role) -> DirectoryChange {
    DirectoryChange::RoleGranted {
        user: user(name),
        workspace: ws(id),
        role,
    }
}

fn revoked(name: &str, id: i64) -> DirectoryChange {
    DirectoryChange::RoleRevoked {
        user: user(name),
        workspace: ws(id),
    }
}

fn superadmin(organization: i64, name: &str) -> DirectoryChange {
    DirectoryChange::SuperadminAssigned {
        organization: org(organization),
        user: user(name),
    }
}

fn directory(changes: &[DirectoryChange]) -> Directory {
    let mut directory = Directory::new(LinkLimits::default());
    for change in changes {
        directory.apply(&op(change.clone())).unwrap();
    }
    directory
}

fn access(directory: &Directory, name: &str) -> Vec<(i64, Role)> {
    directory
        .access(&user(name))
        .into_iter()
        .map(|(w, r)| (w.get(), r))
        .collect()
}

/// Organization 1 links its 101-103; 104 is organization 3's, 201 organization 2's.
fn organization_with_three() -> Vec<DirectoryChange> {
    vec![
        created(101, 1),
        created(102, 1),
        created(103, 1),
        created(104, 3),
        created(201, 2),
        linked(1, 101),
        linked(1, 102),
        linked(1, 103),
    ]
}

#[test]
fn the_superadmin_sees_every_linked_workspace_and_their_own_roles_elsewhere() {
    let mut changes = organization_with_three();
    changes.extend([superadmin(1, "sara"), granted("sara", 201, Role::Observer)]);
    let d = directory(&changes);
    assert_eq!(
        access(&d, "sara"),
        vec![
            (101, Role::SuperAdmin),
            (102, Role::SuperAdmin),
            (103, Role::SuperAdmin),
            (201, Role::Observer)
        ]
    );
}

#[test]
fn a_workspace_linked_later_is_reached_by_the_superadmin() {
    let mut changes = vec![created(101, 1), created(102, 1), superadmin(1, "sara")];
    changes.push(linked(1, 101));
    let mut d = directory(&changes);
    assert_eq!(access(&d, "sara"), vec![(101, Role::SuperAdmin)]);
    d.apply(&op(linked(1, 102))).unwrap();
    assert_eq!(
        access(&d, "sara"),
        vec![(101, Role::SuperAdmin), (102, Role::SuperAdmin)]
    );
}

#[test]
fn the_superadmin_cannot_be_removed_or_demoted_in_a_linked_workspace() {
    let mut changes = organization_with_three();
    changes.push(superadmin(1, "sara"));
    let mut d = directory(&changes);
    for change in [revoked("sara", 101), granted("sara", 101, Role::Observer)] {
        let r = d.apply(&op(change)).unwrap_err();
        assert_eq!(r.reason, Reason::DirectoryRule);
        assert!(
            r.detail.contains("SuperAdmin of organization 1"),
            "{}",
            r.detail
        );
    }
    // In an unrelated Workspace the same person is updated and removed as usual.
    d.apply(&op(granted("sara", 201, Role::Observer))).unwrap();
    d.apply(&op(granted("sara", 201, Role::User))).unwrap();
    d.apply(&op(revoked("sara", 201))).unwrap();
    assert!(!d.access(&user("sara")).contains_key(&ws(201)));
}

#[test]
fn unlinking_ends_superadmin_access_except_where_they_had_access_before() {
    // 101 and 102 are other organizations' Workspaces; sara observed 101 before the link.
    let mut changes = vec![
        created(100, 1),
        created(101, 2),
        created(102, 3),
        granted("sara", 101, Role::Observer),
    ];
    changes.extend([linked(1, 101), linked(1, 102), superadmin(1, "sara")]);
    let mut d = directory(&changes);
    d.apply(&op(unlinked(1, 101))).unwrap();
    d.apply(&op(unlinked(1, 102))).unwrap();
    assert_eq!(access(&d, "sara"), vec![(101, Role::Administrator)]);
}

#[test]
fn the_organizations_own_workspace_counts_as_access_before_the_link() {
    let changes = [
        created(101, 1),
        created(102, 2),
        linked(1, 101),
        linked(1, 102),
        superadmin(1, "sara"),
    ];
    let mut d = directory(&changes);
    d.apply(&op(unlinked(1, 101))).unwrap();
    assert_eq!(
        access(&d, "sara"),
        vec![(101, Role::Administrator), (102, Role::SuperAdmin)]
    );
    // With nothing linked any more, the SuperAdmin role is gone.
    d.apply(&op(unlinked(1, 102))).unwrap();
    assert_eq!(d.superadmin(org(1)), None);
    assert_eq!(access(&d, "sara"), vec![(101, Role::Administrator)]);
}

#[test]
fn unlinking_changes_nothing_for_other_users() {
    let mut changes = organization_with_three();
    changes.extend([superadmin(1, "sara"), granted("olga", 101, Role::Observer)]);
    let mut d = directory(&changes);
    d.apply(&op(unlinked(1, 101))).unwrap();
    assert_eq!(access(&d, "olga"), vec![(101, Role::Observer)]);
}

#[test]
fn an_organization_links_three_workspaces_unless_its_limit_is_raised() {
    let changes = organization_with_three();
    let mut d = directory(&changes);
    let r = d.apply(&op(linked(1, 104))).unwrap_err();
    assert!(
        r.detail.contains("already has 3 Workspaces"),
        "{}",
        r.detail
    );

    let mut raised = Directory::new(LinkLimits::default().with("1=4".parse().unwrap()));
    for change in &changes {
        raised.apply(&op(change.clone())).unwrap();
    }
    raised.apply(&op(linked(1, 104))).unwrap();
}

#[test]
fn events_about_unknown_or_misplaced_workspaces_are_refused() {
    let mut d = directory(&[created(101, 1), created(102, 1), linked(1, 101)]);
    let refusals = [
        created(101, 1),
        linked(1, 999),
        linked(2, 101),
        linked(1, 101),
        unlinked(2, 101),
        unlinked(1, 102),
        granted("olga", 999, Role::User),
        revoked("olga", 101),
    ];
    for change in refusals {
        let r = d.apply(&op(change.clone())).unwrap_err();
        assert_eq!(r.reason, Reason::DirectoryRule, "{change:?}");
    }
    // A refused event changes nothing.
    assert_eq!(d.workspace(ws(101)).unwrap().linked_to, Some(org(1)));
}

#[test]
fn a_reassigned_superadmin_keeps_what_they_had_before_the_link_as_administrator() {
    let mut changes = vec![
        created(101, 1),
        created(102, 2),
        created(103, 3),
        granted("sara", 102, Role::Observer),
    ];
    changes.extend([linked(1, 101), linked(1, 102), linked(1, 103)]);
    changes.extend([superadmin(1, "sara"), superadmin(1, "tom")]);
    let d = directory(&changes);
    // 101 is the organization's own, 102 she observed before: Administrator of both; 103
    // she reached only as SuperAdmin.
    assert_eq!(
        access(&d, "sara"),
        vec![(101, Role::Administrator), (102, Role::Administrator)]
    );
    assert_eq!(access(&d, "tom").len(), 3);
    // No longer the SuperAdmin, she can be removed like anyone.
    let mut d = d;
    d.apply(&op(revoked("sara", 102))).unwrap();
}

#[test]
fn the_longest_standing_administrator_becomes_superadmin_at_the_first_link() {
    let mut d = Directory::new(LinkLimits::default());
    for (minute, change) in [
        (0, created(101, 1)),
        (1, created(201, 2)),
        (2, granted("olga", 101, Role::Observer)),
        (3, granted("adam", 101, Role::User)),
        (4, granted("bea", 101, Role::Administrator)),
        // Administrator elsewhere earlier, but not in the main organization.
        (1, granted("carl", 201, Role::Administrator)),
        // adam becomes Administrator after bea.
        (5, granted("adam", 101, Role::Administrator)),
        (6, linked(1, 201)),
    ] {
        d.apply(&by(Actor::Operator("noc".into()), change, minute))
            .unwrap();
    }
    assert_eq!(d.superadmin(org(1)), Some(&user("bea")));
    // Her own Workspace is not linked: there she stays Administrator.
    assert_eq!(
        access(&d, "bea"),
        vec![(101, Role::Administrator), (201, Role::SuperAdmin)]
    );
}

#[test]
fn packages_count_workspaces_not_links() {
    // Free: the organization's one Workspace and nothing more.
    let mut free = Directory::new(LinkLimits::default().with("1=free".parse().unwrap()));
    free.apply(&op(created(101, 1))).unwrap();
    let r = free.apply(&op(created(102, 1))).unwrap_err();
    assert!(
        r.detail.contains("already has 1 Workspaces"),
        "{}",
        r.detail
    );
    free.apply(&op(created(201, 2))).unwrap();
    assert!(free.apply(&op(linked(1, 201))).is_err());
    // Linking its own Workspace adds none.
    free.apply(&op(linked(1, 101))).unwrap();

    // Pro: three in all, own and linked together.
    let mut pro = directory(&[created(101, 1), created(102, 1), created(201, 2)]);
    pro.apply(&op(linked(1, 201))).unwrap();
    assert!(pro.apply(&op(created(103, 1))).is_err());
    // Unlinked, 201 is organization 2's again and frees the place.
    pro.apply(&op(unlinked(1, 201))).unwrap();
    pro.apply(&op(created(103, 1))).unwrap();
}

#[test]
fn people_make_only_the_changes_their_roles_allow() {
    let mut changes = organization_with_three();
    changes.extend([
        superadmin(1, "sara"),
        granted("adam", 101, Role::Administrator),
        granted("olga", 101, Role::Observer),
        granted("adam", 201, Role::Observer),
    ]);
    let mut d = directory(&changes);
    let refused = |d: &mut Directory, who: &str, change: DirectoryChange| {
        let r = d.apply(&by(person(who), change, 10)).unwrap_err();
        assert_eq!(r.reason, Reason::NotAllowed, "{r}");
        r.detail
    };
    // Only operators create, link, unlink and assign.
    for change in [
        created(105, 1),
        linked(1, 104),
        unlinked(1, 101),
        superadmin(1, "adam"),
    ] {
        let detail = refused(&mut d, "sara", change);
        assert!(detail.contains("operator"), "{detail}");
    }
    // An Administrator manages their Workspace's people, not another's; an Observer none.
    d.apply(&by(person("adam"), granted("ivy", 101, Role::User), 10))
        .unwrap();
    refused(&mut d, "adam", granted("ivy", 201, Role::User));
    refused(&mut d, "olga", granted("ivy", 101, Role::Administrator));
    // The SuperAdmin manages every linked Workspace.
    d.apply(&by(person("sara"), granted("ivy", 102, Role::Observer), 10))
        .unwrap();
    d.apply(&by(person("sara"), revoked("adam", 101), 11))
        .unwrap();
    // A person chooses only their own default Workspace, among those they can reach.
    let set_default = |name: &str, id: i64| DirectoryChange::DefaultWorkspaceSet {
        user: user(name),
        workspace: ws(id),
    };
    refused(&mut d, "olga", set_default("ivy", 101));
    d.apply(&by(person("ivy"), set_default("ivy", 102), 12))
        .unwrap();
    assert_eq!(d.default_workspace(&user("ivy")), Some(ws(102)));
    let r = d
        .apply(&by(person("olga"), set_default("olga", 102), 12))
        .unwrap_err();
    assert_eq!(r.reason, Reason::DirectoryRule);
}

#[test]
fn single_sign_on_is_set_by_an_administrator_of_their_default_workspace() {
    let sso = |id: i64, enabled: bool| DirectoryChange::SsoSet {
        workspace: ws(id),
        enabled,
    };
    let mut d = Directory::new(LinkLimits::default());
    for (minute, change) in [
        (0, created(101, 1)),
        (0, created(201, 2)),
        (1, granted("adam", 201, Role::Administrator)),
        (2, granted("adam", 101, Role::Administrator)),
        (2, granted("olga", 101, Role::Observer)),
    ] {
        d.apply(&by(Actor::Operator("noc".into()), change, minute))
            .unwrap();
    }
    // adam's first invitation (201) is his default until he chooses.
    assert_eq!(d.default_workspace(&user("adam")), Some(ws(201)));
    let r = d.apply(&by(person("adam"), sso(101, true), 1)).unwrap_err();
    assert_eq!(r.reason, Reason::NotAllowed);
    assert!(r.detail.contains("not user adam's default"), "{}", r.detail);
    assert_eq!(
        d.apply(&by(person("olga"), sso(101, true), 1))
            .unwrap_err()
            .reason,
        Reason::NotAllowed
    );
    d.apply(&by(
        person("adam"),
        DirectoryChange::DefaultWorkspaceSet {
            user: user("adam"),
            workspace: ws(101),
        },
        2,
    ))
    .unwrap();
    d.apply(&by(person("adam"), sso(101, true), 3)).unwrap();
    // Everyone whose default is 101 signs in through organization 1's provider; in 201,
    // not his default, adam would have kept his password had 201 had it.
    assert_eq!(d.single_sign_on(&user("olga")), Some((ws(101), org(1))));
    assert_eq!(d.single_sign_on(&user("adam")), Some((ws(101), org(1))));
    d.apply(&by(person("adam"), sso(101, false), 4)).unwrap();
    assert_eq!(d.single_sign_on(&user("olga")), None);
}

#[test]
fn a_sim_moves_only_between_workspaces_its_mover_manages() {
    let mut changes = organization_with_three();
    changes.extend([
        superadmin(1, "sara"),
        granted("adam", 101, Role::Administrator),
        granted("adam", 201, Role::User),
    ]);
    let d = directory(&changes);
    d.authorize_transfer(&person("sara"), ws(101), ws(103))
        .unwrap();
    d.authorize_transfer(&Actor::Operator("noc".into()), ws(101), ws(201))
        .unwrap();
    let r = d
        .authorize_transfer(&person("adam"), ws(101), ws(201))
        .unwrap_err();
    assert_eq!(r.reason, Reason::NotAllowed);
    assert!(r.detail.contains("Workspace 201"), "{}", r.detail);
    assert!(d
        .authorize_transfer(&person("sara"), ws(101), ws(201))
        .is_err());
}
