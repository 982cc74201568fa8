use super::*;

fn ws(id: i64) -> WorkspaceId {
    WorkspaceId::new(id).unwrap()
}

fn org(id: i64) -> OrganizationId {
    OrganizationId::new(id).unwrap()
}

fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap()
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
        directory.apply(change).unwrap();
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

/// Organization 1 links 101-103; 201 belongs to organization 2.
fn organization_with_three() -> Vec<DirectoryChange> {
    vec![
        created(101, 1),
        created(102, 1),
        created(103, 1),
        created(104, 1),
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
    d.apply(&linked(1, 102)).unwrap();
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
        let r = d.apply(&change).unwrap_err();
        assert_eq!(r.reason, Reason::DirectoryRule);
        assert!(
            r.detail.contains("SuperAdmin of organization 1"),
            "{}",
            r.detail
        );
    }
    // In an unrelated Workspace the same person is updated and removed as usual.
    d.apply(&granted("sara", 201, Role::Observer)).unwrap();
    d.apply(&granted("sara", 201, Role::User)).unwrap();
    d.apply(&revoked("sara", 201)).unwrap();
    assert!(!d.access(&user("sara")).contains_key(&ws(201)));
}

#[test]
fn unlinking_ends_superadmin_access_except_where_they_had_a_role_before() {
    let mut changes = vec![
        created(101, 1),
        created(102, 1),
        granted("sara", 101, Role::Observer),
    ];
    changes.extend([linked(1, 101), linked(1, 102), superadmin(1, "sara")]);
    let mut d = directory(&changes);
    d.apply(&unlinked(1, 101)).unwrap();
    d.apply(&unlinked(1, 102)).unwrap();
    assert_eq!(access(&d, "sara"), vec![(101, Role::Administrator)]);
}

#[test]
fn unlinking_changes_nothing_for_other_users() {
    let mut changes = organization_with_three();
    changes.extend([superadmin(1, "sara"), granted("olga", 101, Role::Observer)]);
    let mut d = directory(&changes);
    d.apply(&unlinked(1, 101)).unwrap();
    assert_eq!(access(&d, "olga"), vec![(101, Role::Observer)]);
}

#[test]
fn an_organization_links_three_workspaces_unless_its_limit_is_raised() {
    let changes = organization_with_three();
    let mut d = directory(&changes);
    let r = d.apply(&linked(1, 104)).unwrap_err();
    assert!(r.detail.contains("already links 3"), "{}", r.detail);

    let mut raised = Directory::new(LinkLimits::default().with("1=4".parse().unwrap()));
    for change in &changes {
        raised.apply(change).unwrap();
    }
    raised.apply(&linked(1, 104)).unwrap();
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
        let r = d.apply(&change).unwrap_err();
        assert_eq!(r.reason, Reason::DirectoryRule, "{change:?}");
    }
    // A refused event changes nothing.
    assert_eq!(d.workspace(ws(101)).unwrap().linked_to, Some(org(1)));
}

#[test]
fn a_new_superadmin_replaces_the_previous_one() {
    let mut changes = organization_with_three();
    changes.extend([superadmin(1, "sara"), superadmin(1, "tom")]);
    let d = directory(&changes);
    assert!(access(&d, "sara").is_empty());
    assert_eq!(access(&d, "tom").len(), 3);
}
