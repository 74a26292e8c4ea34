use super::*;
use crate::domain::Status;

fn app(id: i64, hosts: &[&str], paths: &[&str], access: Access) -> App {
    App {
        id,
        name: format!("app{id}"),
        url: None,
        icon: None,
        hosts: hosts
            .iter()
            .map(|h| HostPattern::parse(h).unwrap())
            .collect(),
        paths: paths
            .iter()
            .map(|p| PathPrefix::parse(p).unwrap())
            .collect(),
        access,
        viewers_read_only: false,
        source: AppSource::Ui,
    }
}

fn get<'a>(host: &'a str, path: &'a str) -> Protected<'a> {
    Protected {
        method: "GET",
        host,
        path,
    }
}

fn user(role: Role, groups: &[i64]) -> Subject<'_> {
    Subject {
        user_id: 7,
        role,
        status: Status::Active,
        groups,
    }
}

#[test]
fn the_most_specific_rule_wins() {
    let table = AppTable::new(
        vec![
            app(1, &["*.example.com"], &[], Access::SignedIn),
            app(2, &["media.example.com"], &[], Access::Public),
            app(3, &["media.example.com"], &["/admin"], Access::SignedIn),
            app(4, &["*.lab.example.com"], &[], Access::Public),
        ],
        DefaultPolicy::Deny,
    );
    let id = |host, path| table.find(host, path).map(|a| a.id);
    assert_eq!(
        id("media.example.com", "/"),
        Some(2),
        "exact host over wildcard"
    );
    assert_eq!(id("media.example.com", "/admin/x"), Some(3), "longest path");
    assert_eq!(id("media.example.com", "/administrator"), Some(2));
    assert_eq!(id("git.example.com", "/"), Some(1));
    assert_eq!(
        id("nas.lab.example.com", "/"),
        Some(4),
        "longer wildcard domain"
    );
    assert_eq!(
        id("example.com", "/"),
        None,
        "a wildcard is not its own domain"
    );
    assert_eq!(id("example.org", "/"), None);
    assert!(table.knows_host("git.example.com"));
    assert!(!table.knows_host("example.com.evil.net"));
}

#[test]
fn ties_go_to_the_older_app_whatever_the_order() {
    let a = app(5, &["x.example.com"], &[], Access::Public);
    let b = app(9, &["x.example.com"], &[], Access::SignedIn);
    for apps in [vec![a.clone(), b.clone()], vec![b, a]] {
        let table = AppTable::new(apps, DefaultPolicy::Deny);
        assert_eq!(table.find("x.example.com", "/").map(|a| a.id), Some(5));
    }
}

#[test]
fn the_decision_follows_the_rule() {
    let restricted = Access::Restricted {
        roles: vec![Role::Admin],
        groups: vec![40],
        users: vec![7],
    };
    let table = AppTable::new(
        vec![
            app(1, &["open.example.com"], &[], Access::Public),
            app(2, &["any.example.com"], &[], Access::SignedIn),
            app(3, &["team.example.com"], &[], restricted),
            app(
                4,
                &["fam.example.com"],
                &[],
                Access::Restricted {
                    roles: vec![],
                    groups: vec![40],
                    users: vec![],
                },
            ),
        ],
        DefaultPolicy::Deny,
    );
    let d = |host, who| table.decide(get(host, "/"), who).decision;
    assert_eq!(d("open.example.com", None), Decision::Allow);
    assert_eq!(d("any.example.com", None), Decision::SignIn);
    assert_eq!(
        d("any.example.com", Some(user(Role::Viewer, &[]))),
        Decision::Allow
    );
    // user id 7 is listed by name on "team"
    assert_eq!(
        d("team.example.com", Some(user(Role::User, &[]))),
        Decision::Allow
    );
    let other = Subject {
        user_id: 8,
        ..user(Role::User, &[])
    };
    assert_eq!(
        d("team.example.com", Some(other)),
        Decision::Deny(Denied::NotListed)
    );
    assert_eq!(
        d("fam.example.com", Some(other)),
        Decision::Deny(Denied::NotListed)
    );
    let member = Subject {
        user_id: 8,
        ..user(Role::User, &[3, 40])
    };
    assert_eq!(d("fam.example.com", Some(member)), Decision::Allow);
    let pending = Subject {
        status: Status::Pending,
        ..user(Role::Admin, &[])
    };
    assert_eq!(
        d("any.example.com", Some(pending)),
        Decision::Deny(Denied::Status(Status::Pending))
    );
    assert_eq!(
        d("nowhere.example.com", None),
        Decision::Deny(Denied::NoApp)
    );
    assert_eq!(
        d("nowhere.example.com", Some(user(Role::Admin, &[]))),
        Decision::Deny(Denied::NoApp)
    );
    let open = AppTable::new(vec![], DefaultPolicy::SignedIn);
    assert_eq!(
        open.decide(get("x.example.com", "/"), None).decision,
        Decision::SignIn
    );
    let v = open.decide(get("x.example.com", "/"), Some(user(Role::User, &[])));
    assert_eq!(v.decision, Decision::Allow);
    assert!(
        v.explain(DefaultPolicy::SignedIn)
            .contains("default_policy")
    );
    let team = table.decide(get("team.example.com", "/"), Some(other));
    assert_eq!(
        team.explain(DefaultPolicy::Deny),
        "denied: not listed by role, group or name — app “app3” (open to role admin or 1 group or 1 person by name)"
    );
}

#[test]
fn viewers_may_only_read_a_read_only_app() {
    let mut a = app(1, &["wiki.example.com"], &[], Access::SignedIn);
    a.viewers_read_only = true;
    let table = AppTable::new(vec![a], DefaultPolicy::Deny);
    let ask = |method, role| {
        table
            .decide(
                Protected {
                    method,
                    host: "wiki.example.com",
                    path: "/",
                },
                Some(user(role, &[])),
            )
            .decision
    };
    assert_eq!(ask("GET", Role::Viewer), Decision::Allow);
    assert_eq!(ask("OPTIONS", Role::Viewer), Decision::Allow);
    assert_eq!(ask("POST", Role::Viewer), Decision::Deny(Denied::ReadOnly));
    assert_eq!(ask("POST", Role::User), Decision::Allow);
}

#[test]
fn a_hundred_apps_are_found_by_host() {
    let apps = (0..100)
        .map(|i| app(i, &[&format!("app{i}.example.com")], &[], Access::SignedIn))
        .collect();
    let table = AppTable::new(apps, DefaultPolicy::Deny);
    assert_eq!(table.find("app73.example.com", "/").map(|a| a.id), Some(73));
}
