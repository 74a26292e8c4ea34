//! Apps and their rules (issue 11, points 6 and 7): `/admin/apps` and `/api/admin/apps`
//! (create, edit, remove, field errors, names unique in any case, audit, `rules_version`),
//! apps from `[[apps]]` (synced at start-up, read-only everywhere, gone when removed from
//! the file), the rule tester over HTTP, and the portal on `/` for each kind of person.
//! The screens in a real browser: `browser_apps.rs`.

use hallpass::config::{AppConfig, Config};
use hallpass::db::DatabaseUrl;
use hallpass::domain::apps::{AccessKind, AppInput, GroupRef};
use hallpass::domain::{Password, Role};
use hallpass::service::Actor;
use hallpass::service::admin::{InitialPassword, Profile, create_user};
use serde_json::{Value, json};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, TestDb, api_login, audit_events, sql, user,
};

both_databases!(
    admins_manage_apps_through_the_forms,
    admins_manage_apps_through_the_api,
    file_apps_are_synced_at_start_up_and_read_only,
    a_file_app_named_like_a_ui_app_stops_the_start_up,
    the_rule_tester_explains_each_decision,
    the_rule_tester_answers_on_the_page_with_and_without_htmx,
    the_default_policy_decides_for_unknown_hosts,
    the_portal_lists_the_apps_open_to_each_person,
    the_portal_explains_an_empty_list,
);

pub const PASSWORD: &str = "member password";

/// Creates an active account with `PASSWORD`; returns its id.
pub async fn member(app: &TestApp, name: &str, role: &str) -> i64 {
    create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        Profile::parse(name, "", "", role).unwrap(),
        InitialPassword::Given(Password::parse(PASSWORD).unwrap()),
    )
    .await
    .unwrap()
    .0
    .id
}

/// Creates group `name` (if missing) with these members; returns its id.
pub async fn group(app: &TestApp, name: &str, members: &[i64]) -> i64 {
    let owned = name.to_owned();
    let id = app
        .state
        .db
        .run(move |c| hallpass::db::groups::ensure(c, &owned))
        .await
        .unwrap();
    for m in members {
        sql(
            app,
            format!(
                "INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ({id}, {m}, 'admin', 0)"
            ),
        )
        .await;
    }
    id
}

async fn rules_version(app: &TestApp) -> i64 {
    app.state
        .db
        .run(hallpass::db::settings::rules_version)
        .await
        .unwrap()
}

/// An app rule for the service, as the tests write them.
pub struct Rule<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub icon: &'a str,
    pub hosts: &'a [&'a str],
    pub paths: &'a [&'a str],
    pub access: &'a str,
    pub roles: &'a [&'a str],
    pub groups: &'a [&'a str],
    pub users: &'a [&'a str],
    pub viewers_read_only: bool,
}

pub const RULE: Rule<'static> = Rule {
    name: "",
    url: "",
    icon: "",
    hosts: &[],
    paths: &[],
    access: "signed_in",
    roles: &[],
    groups: &[],
    users: &[],
    viewers_read_only: false,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Adds an app through the service (the same call the screens make); returns its id.
pub async fn add(app: &TestApp, r: Rule<'_>) -> i64 {
    let input = AppInput {
        name: r.name.into(),
        url: r.url.into(),
        icon: r.icon.into(),
        hosts: strings(r.hosts),
        paths: strings(r.paths),
        access: r.access.into(),
        roles: strings(r.roles),
        groups: r
            .groups
            .iter()
            .map(|g| GroupRef::Name((*g).to_owned()))
            .collect(),
        users: strings(r.users),
        viewers_read_only: r.viewers_read_only,
    };
    hallpass::service::apps::create(&app.state.db, Actor::system("test"), input)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", r.name))
        .app
        .id
}

async fn form_post(
    c: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = app.csrf(c, "/admin/apps").await;
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    c.post(app.url(path)).form(&form).send().await.unwrap()
}

async fn page(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The text of the element with this id (its first text, tags left out).
fn by_id(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = at + html[at..].find('>')? + 1;
    let end = start + html[start..].find("</")?;
    Some(html[start..end].trim().to_owned())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn admins_manage_apps_through_the_forms(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let alice = member(&app, "alice", "user").await;
    group(&app, "Family", &[alice]).await;
    let c = app.admin_client().await;
    let (status, html) = page(&c, &app, "/admin/apps").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"no-apps\""), "{html}");
    assert!(
        html.contains("href=\"/admin/apps\" id=\"nav-apps\""),
        "navigation link"
    );
    let (status, html) = page(&c, &app, "/admin/apps/new").await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"app-form\""));

    // Every mistake at once, each by its field, and the input kept.
    let version = rules_version(&app).await;
    let r = form_post(
        &c,
        &app,
        "/admin/apps",
        &[
            ("name", ""),
            ("url", "ftp://files.example.com"),
            ("icon", "far too long for an icon"),
            ("hosts", "https://grafana.example.com"),
            ("paths", "admin"),
            ("access", "restricted"),
            ("groups", "family, nosuch"),
            ("users", "alice\nnobody"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    for field in ["name", "url", "icon", "hosts", "paths"] {
        assert!(
            by_id(&html, &format!("{field}-error")).is_some(),
            "no message by {field}: {html}"
        );
    }
    assert_eq!(
        by_id(&html, "groups-error").unwrap(),
        "No such group: “nosuch”."
    );
    assert_eq!(
        by_id(&html, "users-error").unwrap(),
        "No account named “nobody”."
    );
    assert!(
        html.contains("value=\"ftp://files.example.com\""),
        "input kept"
    );
    assert!(
        html.contains("alice\nnobody</textarea>"),
        "input kept: {html}"
    );
    assert!(html.contains("id=\"access-restricted\" checked"));
    assert_eq!(rules_version(&app).await, version, "nothing written");

    // A good one: back to the table, which shows it.
    let r = form_post(
        &c,
        &app,
        "/admin/apps",
        &[
            ("name", "Grafana"),
            ("url", "https://grafana.example.com/"),
            ("icon", "GF"),
            ("hosts", "grafana.example.com\n*.grafana.example.com"),
            ("paths", ""),
            ("access", "restricted"),
            ("role_admin", "on"),
            ("groups", "FAMILY"),
            ("users", "Alice"),
            ("viewers_read_only", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/apps?notice=created");
    assert!(rules_version(&app).await > version, "rules_version moved");
    let (_, html) = page(&c, &app, "/admin/apps?notice=created").await;
    assert!(by_id(&html, "notice").is_some());
    assert!(html.contains("<strong class=\"app-name\">Grafana</strong>"));
    assert!(html.contains("<code>*.grafana.example.com</code>"));
    assert!(
        html.contains("Roles: admin · Groups: Family · Users: alice"),
        "{html}"
    );
    assert!(html.contains("badge-ui"));
    let events = audit_events(&app, "app.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("Grafana"));
    assert_eq!(events[0].actor, ADMIN);
    let detail = events[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("access=restricted") && detail.contains("groups=Family"),
        "{detail}"
    );

    // Names are unique in any case.
    let r = form_post(
        &c,
        &app,
        "/admin/apps",
        &[
            ("name", "GRAFANA"),
            ("hosts", "other.example.com"),
            ("access", "signed_in"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert_eq!(
        by_id(&html, "name-error").unwrap(),
        "Another app is already named “Grafana”."
    );

    // Edit: the form shows what is stored; a change is saved, audited, versioned.
    let id = hallpass::service::apps::list(&app.state.db).await.unwrap()[0]
        .app
        .id;
    let (status, html) = page(&c, &app, &format!("/admin/apps/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("grafana.example.com\n*.grafana.example.com</textarea>"));
    assert!(html.contains("id=\"role_admin\" checked"));
    assert!(html.contains("id=\"viewers_read_only\" checked"));
    assert!(!html.contains("id=\"read-only\""));
    let version = rules_version(&app).await;
    let r = form_post(
        &c,
        &app,
        &format!("/admin/apps/{id}"),
        &[
            ("name", "Grafana"),
            ("hosts", "grafana.example.com"),
            ("access", "signed_in"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/apps?notice=saved");
    assert!(rules_version(&app).await > version);
    let saved = hallpass::service::apps::get(&app.state.db, id)
        .await
        .unwrap();
    assert_eq!(saved.app.access.kind(), AccessKind::SignedIn);
    assert!(saved.app.url.is_none() && !saved.app.viewers_read_only);
    assert_eq!(audit_events(&app, "app.update").await.len(), 1);
    // An edit with a mistake keeps the edit page and the input.
    let r = form_post(
        &c,
        &app,
        &format!("/admin/apps/{id}"),
        &[("name", "Grafana"), ("hosts", ""), ("access", "signed_in")],
    )
    .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("action=\"/admin/apps/{id}\"")));
    assert!(
        by_id(&html, "hosts-error")
            .unwrap()
            .starts_with("Name at least one host")
    );

    // Remove: a confirmation page first, then the app is gone.
    let (status, html) = page(&c, &app, &format!("/admin/apps/{id}/delete")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&format!("action=\"/admin/apps/{id}/delete\"")));
    let version = rules_version(&app).await;
    let r = form_post(&c, &app, &format!("/admin/apps/{id}/delete"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/apps?notice=deleted");
    assert!(rules_version(&app).await > version);
    assert_eq!(audit_events(&app, "app.delete").await.len(), 1);
    let (_, html) = page(&c, &app, "/admin/apps").await;
    assert!(html.contains("id=\"no-apps\""));
    for path in [
        format!("/admin/apps/{id}"),
        format!("/admin/apps/{id}/delete"),
    ] {
        assert_eq!(page(&c, &app, &path).await.0, 404, "{path}");
    }
    let r = form_post(&c, &app, &format!("/admin/apps/{id}/delete"), &[]).await;
    assert_eq!(r.status(), 404);
}

async fn api(
    c: &reqwest::Client,
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = c
        .request(method, app.url(path))
        .header("X-CSRF-Token", token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn admins_manage_apps_through_the_api(db: Db) {
    use reqwest::Method as M;
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let bob = member(&app, "bob", "user").await;
    let family = group(&app, "family", &[]).await;
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;

    // Missing fields get the same messages by name as empty ones.
    let (status, v) = api(&c, &app, &t, M::POST, "/api/admin/apps", Some(json!({}))).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"]["code"], "VALIDATION_FAILED");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["name", "hosts", "access"] {
        assert!(fields.contains(&f), "{f} missing: {v}");
    }
    let (status, v) = api(
        &c,
        &app,
        &t,
        M::POST,
        "/api/admin/apps",
        Some(
            json!({"name": "X", "hosts": ["x.example.com"], "access": "restricted",
                    "groups": [9999, "nosuch"], "users": ["ghost"]}),
        ),
    )
    .await;
    assert_eq!(status, 422);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("“nosuch”") && message.contains("“#9999”") && message.contains("“ghost”"),
        "{message}"
    );
    // An unknown field is refused, not ignored.
    let (status, _) = api(
        &c,
        &app,
        &t,
        M::POST,
        "/api/admin/apps",
        Some(json!({"name": "X", "hosts": ["x.example.com"], "access": "public", "admins": true})),
    )
    .await;
    assert!(status == 400 || status == 422, "{status}");

    // Create: groups by id or by name, users by username.
    let version = rules_version(&app).await;
    let (status, created) = api(
        &c,
        &app,
        &t,
        M::POST,
        "/api/admin/apps",
        Some(
            json!({"name": "Jellyfin", "url": "https://media.example.com", "icon": "JF",
                    "hosts": ["media.example.com"], "paths": ["/web/"], "access": "restricted",
                    "roles": ["viewer"], "groups": [family], "users": ["BOB"]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(rules_version(&app).await > version);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["source"], "ui");
    assert_eq!(created["paths"], json!(["/web"]));
    assert_eq!(created["roles"], json!(["viewer"]));
    assert_eq!(created["groups"], json!([{"id": family, "name": "family"}]));
    assert_eq!(created["users"], json!([{"id": bob, "username": "bob"}]));
    let (status, again) = api(
        &c,
        &app,
        &t,
        M::POST,
        "/api/admin/apps",
        Some(json!({"name": "jellyFIN", "hosts": ["x.example.com"], "access": "public"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(again["error"]["fields"][0]["field"], "name");

    let (status, list) = api(&c, &app, &t, M::GET, "/api/admin/apps", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["apps"][0]["name"], "Jellyfin");
    let path = format!("/api/admin/apps/{id}");
    let (status, one) = api(&c, &app, &t, M::GET, &path, None).await;
    assert_eq!((status, &one), (200, &created));

    // PATCH keeps what it does not name; null removes the link.
    let (status, patched) = api(
        &c,
        &app,
        &t,
        M::PATCH,
        &path,
        Some(json!({"url": null, "viewers_read_only": true})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["url"], Value::Null);
    assert_eq!(patched["viewers_read_only"], true);
    assert_eq!(patched["users"], created["users"]);
    // PUT replaces everything.
    let (status, put) = api(
        &c,
        &app,
        &t,
        M::PUT,
        &path,
        Some(json!({"name": "Jellyfin", "hosts": ["jf.example.com"], "access": "signed_in"})),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["access"], "signed_in");
    assert_eq!(put["groups"], json!([]));
    assert_eq!(put["icon"], Value::Null);
    assert_eq!(audit_events(&app, "app.update").await.len(), 2);

    let version = rules_version(&app).await;
    let (status, _) = api(&c, &app, &t, M::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert!(rules_version(&app).await > version);
    assert_eq!(audit_events(&app, "app.delete").await.len(), 1);
    for method in [M::GET, M::PUT, M::PATCH, M::DELETE] {
        let (status, v) = api(&c, &app, &t, method.clone(), &path, Some(json!({}))).await;
        assert_eq!(status, 404, "{method}");
        assert_eq!(v["error"]["code"], "NOT_FOUND");
        assert_eq!(v["error"]["message"], "No such app.");
    }
}

pub(crate) fn file_app(name: &str, host: &str) -> AppConfig {
    AppConfig {
        name: name.into(),
        url: Some(format!("https://{host}/")),
        icon: None,
        hosts: vec![host.into()],
        paths: vec![],
        access: AccessKind::Restricted,
        roles: vec![Role::Admin],
        groups: vec!["Household".into()],
        users: vec!["alice".into(), "ghost".into()],
        viewers_read_only: false,
    }
}

async fn file_apps_are_synced_at_start_up_and_read_only(db: Db) {
    let Some(first) = TestApp::start(
        db,
        |c| c.apps.push(file_app("Grafana", "grafana.example.com")),
        true,
    )
    .await
    else {
        return;
    };
    // The group named by the file was created; the unknown user was left out.
    let apps = hallpass::service::apps::list(&first.state.db)
        .await
        .unwrap();
    assert_eq!(apps.len(), 1);
    let grafana = &apps[0];
    assert_eq!(grafana.app.source, hallpass::domain::apps::AppSource::File);
    assert_eq!(grafana.groups.len(), 1);
    assert_eq!(grafana.groups[0].1, "Household");
    assert!(grafana.users.is_empty(), "alice and ghost do not exist yet");
    let events = audit_events(&first, "app.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "configuration file");
    let id = grafana.app.id;
    // alice exists from now on: the next start lists her.
    let alice = member(&first, "alice", "user").await;
    let test_db = first.stop_keep_db().await;

    let app = TestApp::start_on(
        test_db,
        |c| c.apps.push(file_app("Grafana", "grafana.example.com")),
        true,
    )
    .await;
    let again = hallpass::service::apps::get(&app.state.db, id)
        .await
        .unwrap();
    assert_eq!(again.users, vec![(alice, "alice".to_owned())]);
    assert_eq!(audit_events(&app, "app.update").await.len(), 1);

    // The UI shows it read-only.
    let c = app.admin_client().await;
    let (_, html) = page(&c, &app, "/admin/apps").await;
    assert!(html.contains("badge-file"), "{html}");
    assert!(html.contains(&format!("id=\"view-{id}\"")));
    assert!(!html.contains(&format!("id=\"delete-{id}\"")));
    let (status, html) = page(&c, &app, &format!("/admin/apps/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"read-only\""));
    assert!(html.contains("<fieldset class=\"stack\" disabled>"));
    assert!(!html.contains("id=\"save-app\""));
    // Every way to change it is refused, and nothing changes.
    let version = rules_version(&app).await;
    let r = form_post(
        &c,
        &app,
        &format!("/admin/apps/{id}"),
        &[
            ("name", "Grafana"),
            ("hosts", "evil.example.com"),
            ("access", "public"),
        ],
    )
    .await;
    assert_eq!(r.status(), 409);
    let html = r.text().await.unwrap();
    assert!(
        by_id(&html, "form-error")
            .unwrap()
            .contains("configuration file"),
        "{html}"
    );
    assert!(
        !html.contains("evil.example.com"),
        "the stored app is shown"
    );
    assert_eq!(
        page(&c, &app, &format!("/admin/apps/{id}/delete")).await.0,
        409
    );
    let r = form_post(&c, &app, &format!("/admin/apps/{id}/delete"), &[]).await;
    assert_eq!(r.status(), 409);
    let (ac, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let path = format!("/api/admin/apps/{id}");
    for (method, body) in [
        (
            reqwest::Method::PUT,
            Some(json!({"name": "Grafana", "hosts": ["x.example.com"], "access": "public"})),
        ),
        (
            reqwest::Method::PATCH,
            Some(json!({"access": "public", "groups": [], "roles": []})),
        ),
        (reqwest::Method::DELETE, None),
    ] {
        let (status, v) = api(&ac, &app, &t, method.clone(), &path, body).await;
        assert_eq!(status, 409, "{method}: {v}");
        assert_eq!(v["error"]["code"], "APP_READ_ONLY");
    }
    let (_, v) = api(&ac, &app, &t, reqwest::Method::GET, &path, None).await;
    assert_eq!(v["source"], "file");
    assert_eq!(rules_version(&app).await, version, "nothing was written");
    // The name is taken for UI apps too.
    let r = form_post(
        &c,
        &app,
        "/admin/apps",
        &[
            ("name", "grafana"),
            ("hosts", "g.example.com"),
            ("access", "public"),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(
        by_id(&r.text().await.unwrap(), "name-error")
            .unwrap()
            .contains("declared in the configuration file")
    );

    // Started again unchanged: nothing written, the rules version stays.
    let test_db = app.stop_keep_db().await;
    let app = TestApp::start_on(
        test_db,
        |c| c.apps.push(file_app("Grafana", "grafana.example.com")),
        true,
    )
    .await;
    assert_eq!(rules_version(&app).await, version);
    assert_eq!(audit_events(&app, "app.update").await.len(), 1);
    // Removed from the file: gone.
    let test_db = app.stop_keep_db().await;
    let app = TestApp::start_on(test_db, |_| {}, true).await;
    assert!(
        hallpass::service::apps::list(&app.state.db)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(rules_version(&app).await > version);
    let deleted = audit_events(&app, "app.delete").await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].target.as_deref(), Some("Grafana"));
}

async fn a_file_app_named_like_a_ui_app_stops_the_start_up(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    add(
        &app,
        Rule {
            name: "grafana",
            hosts: &["grafana.example.com"],
            ..RULE
        },
    )
    .await;
    let test_db: TestDb = app.stop_keep_db().await;
    let mut config = Config::default();
    config.database.url = DatabaseUrl::parse(&test_db.url).unwrap();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = test_db.data_dir().to_owned();
    config.apps.push(file_app("Grafana", "other.example.com"));
    let err = hallpass::server::prepare(config, None)
        .await
        .expect_err("started with two apps of one name")
        .to_string();
    assert!(
        err.contains("\"Grafana\"") && err.contains("\"grafana\"") && err.contains("/admin/apps"),
        "{err}"
    );
}

/// The rules of the tester and portal tests, and the people they are about.
struct World {
    app: TestApp,
}

async fn world(app: TestApp) -> World {
    let alice = member(&app, "alice", "user").await;
    member(&app, "bob", "user").await;
    member(&app, "vera", "viewer").await;
    group(&app, "family", &[alice]).await;
    for r in [
        Rule {
            name: "Everything else",
            hosts: &["*.example.com"],
            ..RULE
        },
        Rule {
            name: "Jellyfin",
            url: "https://media.example.com/",
            icon: "JF",
            hosts: &["media.example.com"],
            access: "restricted",
            groups: &["family"],
            ..RULE
        },
        Rule {
            name: "Jellyfin admin",
            url: "https://media.example.com/admin/",
            hosts: &["media.example.com"],
            paths: &["/admin"],
            access: "restricted",
            roles: &["admin"],
            ..RULE
        },
        Rule {
            name: "Docs",
            url: "https://docs.example.com/",
            icon: "/static/favicon.svg",
            hosts: &["docs.example.com"],
            access: "public",
            ..RULE
        },
        Rule {
            name: "wiki",
            url: "https://wiki.example.com/",
            hosts: &["wiki.example.com"],
            viewers_read_only: true,
            ..RULE
        },
        Rule {
            name: "Lab notes",
            url: "https://notes.lab.example.com/",
            hosts: &["*.lab.example.com"],
            access: "restricted",
            users: &["bob"],
            ..RULE
        },
        Rule {
            name: "No link",
            hosts: &["nolink.example.com"],
            ..RULE
        },
    ] {
        add(&app, r).await;
    }
    World { app }
}

async fn tester(w: &World, c: &reqwest::Client, t: &str, body: Value) -> (u16, Value) {
    api(
        c,
        &w.app,
        t,
        reqwest::Method::POST,
        "/api/admin/apps/test",
        Some(body),
    )
    .await
}

async fn the_rule_tester_explains_each_decision(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let w = world(app).await;
    let (c, t) = api_login(&w.app, ADMIN, ADMIN_PASSWORD).await;
    // (url, username, method) → (decision, reason, app, matched host, matched path)
    type Case<'a> = (
        (&'a str, &'a str, &'a str),
        (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        ),
    );
    let cases: &[Case<'_>] = &[
        (
            ("https://docs.example.com/x", "", "GET"),
            ("allow", None, Some("Docs"), Some("docs.example.com"), None),
        ),
        (
            ("git.example.com", "", ""),
            (
                "sign_in",
                None,
                Some("Everything else"),
                Some("*.example.com"),
                None,
            ),
        ),
        (
            ("https://git.example.com/", "vera", "POST"),
            (
                "allow",
                None,
                Some("Everything else"),
                Some("*.example.com"),
                None,
            ),
        ),
        // Exact host over wildcard; a group lets alice in.
        (
            ("https://media.example.com/", "alice", "GET"),
            (
                "allow",
                None,
                Some("Jellyfin"),
                Some("media.example.com"),
                None,
            ),
        ),
        (
            ("https://media.example.com/", "bob", "GET"),
            (
                "deny",
                Some("not_listed"),
                Some("Jellyfin"),
                Some("media.example.com"),
                None,
            ),
        ),
        // Admins are not let through a restricted app that does not list them…
        (
            ("https://media.example.com/", ADMIN, "GET"),
            (
                "deny",
                Some("not_listed"),
                Some("Jellyfin"),
                Some("media.example.com"),
                None,
            ),
        ),
        // …but the longer path prefix lists their role.
        (
            ("https://media.example.com/admin/users", ADMIN, "GET"),
            (
                "allow",
                None,
                Some("Jellyfin admin"),
                Some("media.example.com"),
                Some("/admin"),
            ),
        ),
        (
            ("https://media.example.com/admin", "alice", "GET"),
            (
                "deny",
                Some("not_listed"),
                Some("Jellyfin admin"),
                Some("media.example.com"),
                Some("/admin"),
            ),
        ),
        (
            ("https://media.example.com/administrator", "alice", "GET"),
            (
                "allow",
                None,
                Some("Jellyfin"),
                Some("media.example.com"),
                None,
            ),
        ),
        // The longer wildcard domain wins; a user listed by name.
        (
            ("https://notes.lab.example.com/", "bob", "GET"),
            (
                "allow",
                None,
                Some("Lab notes"),
                Some("*.lab.example.com"),
                None,
            ),
        ),
        (
            ("https://notes.lab.example.com/", "alice", "GET"),
            (
                "deny",
                Some("not_listed"),
                Some("Lab notes"),
                Some("*.lab.example.com"),
                None,
            ),
        ),
        // Viewers may only read where the app says so.
        (
            ("https://wiki.example.com/page", "vera", "GET"),
            ("allow", None, Some("wiki"), Some("wiki.example.com"), None),
        ),
        (
            ("https://wiki.example.com/page", "vera", "delete"),
            (
                "deny",
                Some("read_only"),
                Some("wiki"),
                Some("wiki.example.com"),
                None,
            ),
        ),
        (
            ("https://wiki.example.com/page", "bob", "DELETE"),
            ("allow", None, Some("wiki"), Some("wiki.example.com"), None),
        ),
        // Nothing matches: the default policy (deny) decides, for admins too.
        (
            ("https://example.org/", ADMIN, "GET"),
            ("deny", Some("no_app"), None, None, None),
        ),
    ];
    for ((url, username, method), (decision, reason, name, host, path)) in cases {
        let (status, v) = tester(
            &w,
            &c,
            &t,
            json!({"url": url, "username": username, "method": method}),
        )
        .await;
        let case = format!("{method} {url} as {username:?}: {v}");
        assert_eq!(status, 200, "{case}");
        assert_eq!(v["decision"], *decision, "{case}");
        assert_eq!(v["reason"].as_str(), *reason, "{case}");
        assert_eq!(v["app"]["name"].as_str(), *name, "{case}");
        assert_eq!(v["app"]["matched_host"].as_str(), *host, "{case}");
        assert_eq!(v["app"]["matched_path"].as_str(), *path, "{case}");
        assert!(!v["explanation"].as_str().unwrap().is_empty(), "{case}");
    }
    let (_, v) = tester(&w, &c, &t, json!({"url": "https://example.org/"})).await;
    assert!(
        v["explanation"]
            .as_str()
            .unwrap()
            .contains("auth.forward.default_policy (deny)"),
        "{v}"
    );
    // An account that is not active is refused with its status.
    sql(
        &w.app,
        "UPDATE users SET status = 'disabled' WHERE username_key = 'bob'",
    )
    .await;
    let (_, v) = tester(
        &w,
        &c,
        &t,
        json!({"url": "https://wiki.example.com/", "username": "bob"}),
    )
    .await;
    assert_eq!(
        (v["decision"].as_str(), v["reason"].as_str()),
        (Some("deny"), Some("account_status"))
    );
    // Group membership is read live: bob joins the family.
    let bob = user(&w.app, "bob").await.id;
    sql(
        &w.app,
        "UPDATE users SET status = 'active' WHERE username_key = 'bob'",
    )
    .await;
    group(&w.app, "family", &[bob]).await;
    let (_, v) = tester(
        &w,
        &c,
        &t,
        json!({"url": "https://media.example.com/", "username": "bob"}),
    )
    .await;
    assert_eq!(v["decision"], "allow", "{v}");
    // An app added now answers at once (rules_version moved).
    let (_, v) = tester(&w, &c, &t, json!({"url": "https://example.org/"})).await;
    assert_eq!(v["decision"], "deny");
    add(
        &w.app,
        Rule {
            name: "Org",
            hosts: &["example.org"],
            access: "public",
            ..RULE
        },
    )
    .await;
    let (_, v) = tester(&w, &c, &t, json!({"url": "https://example.org/"})).await;
    assert_eq!(
        (v["decision"].as_str(), v["app"]["name"].as_str()),
        (Some("allow"), Some("Org"))
    );

    // Bad input: by field.
    for (body, field) in [
        (json!({"url": ""}), "url"),
        (json!({"url": "ftp://docs.example.com"}), "url"),
        (
            json!({"url": "https://docs.example.com", "username": "ghost"}),
            "username",
        ),
        (
            json!({"url": "https://docs.example.com", "method": "G E T"}),
            "method",
        ),
    ] {
        let (status, v) = tester(&w, &c, &t, body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(v["error"]["fields"][0]["field"], field, "{body}: {v}");
    }
}

async fn the_rule_tester_answers_on_the_page_with_and_without_htmx(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let w = world(app).await;
    let c = w.app.admin_client().await;
    let path = "/admin/apps/test?url=https%3A%2F%2Fmedia.example.com%2Fadmin%2Fx&username=admin&method=GET";
    let (status, html) = page(&c, &w.app, path).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"apps-table\""), "the whole page");
    assert_eq!(by_id(&html, "tester-decision").unwrap(), "Allowed");
    let rule = &html[html.find("id=\"tester-rule\"").unwrap()..];
    assert!(
        rule.contains(
            "Jellyfin admin</a>, host <code>media.example.com</code>, path <code>/admin</code>"
        ),
        "{rule}"
    );
    assert!(
        html.contains("value=\"https://media.example.com/admin/x\""),
        "input kept"
    );
    // htmx: the tester alone.
    let r = c
        .get(w.app.url(path))
        .header("HX-Request", "true")
        .header("HX-Target", "rule-tester")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fragment = r.text().await.unwrap();
    assert!(
        fragment
            .trim_start()
            .starts_with("<section class=\"card\" id=\"rule-tester\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("apps-table"));
    assert_eq!(by_id(&fragment, "tester-decision").unwrap(), "Allowed");
    // A mistake is shown by its field (200 for htmx, which swaps only 2xx answers).
    let r = c
        .get(
            w.app
                .url("/admin/apps/test?url=docs.example.com&username=ghost"),
        )
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let fragment = r.text().await.unwrap();
    assert_eq!(
        by_id(&fragment, "test-username-error").unwrap(),
        "No account named “ghost”."
    );
    assert!(!fragment.contains("id=\"tester-result\""));
    let (status, html) = page(&c, &w.app, "/admin/apps/test?url=&username=").await;
    assert_eq!(status, 422);
    assert!(by_id(&html, "test-url-error").is_some());
    // Anonymous sign-in required, explained.
    let (_, html) = page(
        &c,
        &w.app,
        "/admin/apps/test?url=https%3A%2F%2Fgit.example.com%2F",
    )
    .await;
    assert_eq!(by_id(&html, "tester-decision").unwrap(), "Sign-in required");
    assert!(html.contains("data-decision=\"sign_in\""));
}

async fn the_default_policy_decides_for_unknown_hosts(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.auth.forward.default_policy = hallpass::domain::apps::DefaultPolicy::SignedIn,
        true,
    )
    .await
    else {
        return;
    };
    member(&app, "vera", "viewer").await;
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let test = |body: Value| {
        let (c, t, app) = (&c, &t, &app);
        async move {
            api(
                c,
                app,
                t,
                reqwest::Method::POST,
                "/api/admin/apps/test",
                Some(body),
            )
            .await
            .1
        }
    };
    let v = test(json!({"url": "https://anything.example.net/"})).await;
    assert_eq!(
        (v["decision"].as_str(), v["app"].as_null()),
        (Some("sign_in"), Some(()))
    );
    let v =
        test(json!({"url": "https://anything.example.net/", "username": "vera", "method": "POST"}))
            .await;
    assert_eq!(v["decision"], "allow");
    assert!(
        v["explanation"]
            .as_str()
            .unwrap()
            .contains("default_policy (signed_in)"),
        "{v}"
    );
    let c2 = app.admin_client().await;
    let (_, html) = page(&c2, &app, "/admin/apps").await;
    assert_eq!(by_id(&html, "default-policy").unwrap(), "signed_in");
}

/// The names on someone's portal, in order.
async fn portal_of(app: &TestApp, username: &str, password: &str) -> (Vec<String>, String) {
    let c = app.client();
    assert_eq!(app.login(&c, username, password).await.status(), 303);
    let (status, html) = page(&c, app, "/").await;
    assert_eq!(status, 200);
    let names = html
        .split("<span class=\"portal-name\">")
        .skip(1)
        .map(|s| s[..s.find("</span>").unwrap()].to_owned())
        .collect();
    (names, html)
}

async fn the_portal_lists_the_apps_open_to_each_person(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let w = world(app).await;
    let app = &w.app;
    // By name in any case; apps without a link are never listed.
    let (admin, html) = portal_of(app, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(admin, ["Docs", "Jellyfin admin", "wiki"]);
    assert_eq!(
        by_id(&html, "me-username").unwrap(),
        ADMIN,
        "who you are is still shown"
    );
    assert!(html.contains("<a href=\"https://docs.example.com/\" class=\"portal-app\">"));
    assert!(
        html.contains("<img src=\"/static/favicon.svg\" alt=\"\">"),
        "image icon"
    );
    let (alice, html) = portal_of(app, "alice", PASSWORD).await;
    assert_eq!(alice, ["Docs", "Jellyfin", "wiki"]);
    assert!(html.contains(">JF</span>"), "text icon");
    assert!(html.contains(">W</span>"), "no icon: the initial");
    let (bob, _) = portal_of(app, "bob", PASSWORD).await;
    assert_eq!(bob, ["Docs", "Lab notes", "wiki"]);
    let (vera, _) = portal_of(app, "vera", PASSWORD).await;
    assert_eq!(vera, ["Docs", "wiki"]);
    // A change applies to the next page view.
    let bob_id = user(app, "bob").await.id;
    group(app, "family", &[bob_id]).await;
    let (bob, _) = portal_of(app, "bob", PASSWORD).await;
    assert_eq!(bob, ["Docs", "Jellyfin", "Lab notes", "wiki"]);
}

async fn the_portal_explains_an_empty_list(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    member(&app, "alice", "user").await;
    let (names, html) = portal_of(&app, ADMIN, ADMIN_PASSWORD).await;
    assert!(names.is_empty());
    let empty = &html[html.find("id=\"portal-empty\"").unwrap()..];
    assert!(
        empty.starts_with(
            "id=\"portal-empty\">No apps yet — add one on <a href=\"/admin/apps\">Apps</a>"
        ),
        "{empty}"
    );
    let (_, html) = portal_of(&app, "alice", PASSWORD).await;
    assert_eq!(
        by_id(&html, "portal-empty").unwrap(),
        "No apps are open to you yet; ask an administrator."
    );
    assert!(!html.contains("href=\"/admin/apps\""));
    // Apps exist, but none is open to the admin: say why.
    add(
        &app,
        Rule {
            name: "Family photos",
            url: "https://photos.example.com/",
            hosts: &["photos.example.com"],
            access: "restricted",
            users: &["alice"],
            ..RULE
        },
    )
    .await;
    let (names, html) = portal_of(&app, ADMIN, ADMIN_PASSWORD).await;
    assert!(names.is_empty());
    assert!(by_id(&html, "portal-empty").unwrap().starts_with(
        "No app is open to you yet. Admins open a restricted app only when it lists them"
    ));
    let (names, _) = portal_of(&app, "alice", PASSWORD).await;
    assert_eq!(names, ["Family photos"]);
}
