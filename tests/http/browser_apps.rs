//! `/admin/apps`, its form and rule tester, and the portal in a real headless Chromium (see
//! `support::browser`), with JavaScript on and off. The SQLite run writes the screenshots
//! `apps`, `app-form`, `rule-tester` and `portal` (light and dark) of `docs/screens.md`.

use hallpass::config::AppConfig;
use hallpass::domain::apps::AccessKind;
use serde_json::json;

use crate::apps::{RULE, Rule, add, group, member};
use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp};

both_databases!(browser_apps_rule_tester_and_portal);

/// `/admin/apps`, the form, the rule tester (with htmx, and without JavaScript) and the
/// portal in a real browser, with one app from `[[apps]]`; the SQLite run writes `apps`,
/// `app-form`, `rule-tester` and `portal` (light and dark).
async fn browser_apps_rule_tester_and_portal(db: Db) {
    let paperless = AppConfig {
        name: "Paperless".into(),
        url: Some("https://paperless.example.com/".into()),
        icon: Some("PL".into()),
        hosts: vec!["paperless.example.com".into()],
        paths: vec![],
        access: AccessKind::SignedIn,
        roles: vec![],
        groups: vec![],
        users: vec![],
        viewers_read_only: true,
    };
    let Some(app) = TestApp::start(db, |c| c.apps.push(paperless), true).await else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    let alice = member(&app, "alice", "user").await;
    group(&app, "family", &[alice]).await;
    for r in [
        Rule {
            name: "Home Assistant",
            url: "https://ha.example.com/",
            icon: "HA",
            hosts: &["ha.example.com"],
            access: "restricted",
            groups: &["family"],
            roles: &["admin"],
            ..RULE
        },
        Rule {
            name: "Grafana",
            url: "https://grafana.example.com/",
            icon: "/static/favicon.svg",
            hosts: &["grafana.example.com"],
            viewers_read_only: true,
            ..RULE
        },
        Rule {
            name: "Status page",
            url: "https://status.example.com/",
            hosts: &["status.example.com"],
            access: "public",
            ..RULE
        },
        Rule {
            name: "Homelab",
            hosts: &["*.lab.example.com"],
            paths: &["/admin", "/settings"],
            access: "restricted",
            roles: &["admin"],
            ..RULE
        },
    ] {
        add(&app, r).await;
    }
    b.goto("/login").await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/").await;

    // Add an app through the form: a mistake first, kept input, then saved.
    b.click("#nav-apps").await;
    b.wait_for_path("/admin/apps").await;
    b.click("#new-app").await;
    b.wait_for_path("/admin/apps/new").await;
    b.fill("#name", "Jellyfin").await;
    b.fill("#url", "https://media.example.com/").await;
    b.fill("#icon", "JF").await;
    b.fill("#hosts", "https://media.example.com").await;
    b.click("#access-restricted").await;
    b.fill("#groups", "family").await;
    b.click("#save-app").await;
    b.wait_until(
        "the host error",
        "return document.querySelector('#hosts-error') !== null;",
    )
    .await;
    assert_eq!(b.value("#name").await, "Jellyfin");
    assert!(b.text("#hosts-error").await.contains("host name only"));
    b.screenshot("app-form").await;
    b.fill("#hosts", "media.example.com").await;
    b.click("#save-app").await;
    b.wait_for_path("/admin/apps?notice=created").await;
    let names = b
        .js("return [...document.querySelectorAll('#apps-table .app-name')].map(e => e.textContent);")
        .await;
    assert_eq!(
        names,
        json!([
            "Grafana",
            "Home Assistant",
            "Homelab",
            "Jellyfin",
            "Paperless",
            "Status page"
        ])
    );
    assert!(
        b.text("#apps-table").await.contains("file"),
        "the file app's badge"
    );
    b.screenshot("apps").await;

    // The tester, swapped in place by htmx.
    b.fill("#test-url", "https://media.example.com/library")
        .await;
    b.fill("#test-username", "alice").await;
    b.click("#run-test").await;
    b.wait_until(
        "the tester's answer",
        "return document.querySelector('#tester-result') !== null;",
    )
    .await;
    assert_eq!(b.path().await, "/admin/apps?notice=created", "no page load");
    assert_eq!(b.text("#tester-decision").await, "Allowed");
    assert!(b.text("#tester-rule").await.contains("Jellyfin"));
    b.fill("#test-url", "https://nas.lab.example.com/admin/disks")
        .await;
    b.fill("#test-username", "alice").await;
    b.click("#run-test").await;
    b.wait_until(
        "the second answer",
        "return (document.querySelector('#tester-decision') || {}).textContent === 'Denied';",
    )
    .await;
    assert!(b.text("#tester-rule").await.contains("path /admin"));
    b.screenshot("rule-tester").await;

    // The portal of the admin: the apps open to them, by name.
    b.goto("/").await;
    let names = b
        .js("return [...document.querySelectorAll('.portal-name')].map(e => e.textContent);")
        .await;
    assert_eq!(
        names,
        json!(["Grafana", "Home Assistant", "Paperless", "Status page"])
    );
    b.screenshot("portal").await;
    drop(b);

    // Without JavaScript the tester is a plain form that loads the whole page.
    let Some(b) = Browser::start(
        &app,
        Options::for_db(db).without_javascript().no_screenshots(),
    )
    .await
    else {
        return;
    };
    b.goto("/login").await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/").await;
    b.goto("/admin/apps").await;
    b.fill("#test-url", "https://status.example.com/").await;
    b.click("#run-test").await;
    b.wait_for_path(
        "/admin/apps/test?url=https%3A%2F%2Fstatus.example.com%2F&username=&method=GET",
    )
    .await;
    assert_eq!(b.text("#tester-decision").await, "Allowed");
    assert!(b.exists("#apps-table").await);
}
