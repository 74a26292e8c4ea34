//! `/admin/audit` and `GET /api/admin/audit`: the audit log for admins.

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login};

both_databases!(
    audit_lists_logins_newest_first_without_secrets,
    audit_filters_by_user_and_action,
    audit_pages_50_at_a_time,
    audit_htmx_gets_the_table_fragment,
    audit_is_for_admins_only,
);

/// Creates an active account with the given role through the service layer.
pub async fn create_account(app: &TestApp, username: &str, password: &str, role: &str) {
    use hallpass::service::admin::{InitialPassword, Profile, create_user};
    create_user(
        &app.state.db,
        &app.state.hasher,
        hallpass::service::Actor::system("test"),
        Profile::parse(username, "", "", role).unwrap(),
        InitialPassword::Given(hallpass::domain::Password::parse(password).unwrap()),
    )
    .await
    .unwrap();
}

/// Runs raw SQL built at run time (the support helper takes static strings).
async fn exec(app: &TestApp, query: String) {
    use diesel::RunQueryDsl;
    app.state
        .db
        .run(move |c| {
            diesel::sql_query(query)
                .execute(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap();
}

async fn get(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    let r = c.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

/// The `data-action` of every row, top to bottom.
fn row_actions(html: &str) -> Vec<String> {
    html.match_indices("data-action=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// The ids of every row, top to bottom.
fn row_ids(html: &str) -> Vec<i64> {
    html.match_indices("<tr id=\"event-")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect()
}

/// The `href` of the element with this id, unescaped.
fn href_of(html: &str, id: &str) -> Option<String> {
    let tag_at = html.find(&format!("id=\"{id}\""))?;
    let start = html[..tag_at].rfind("<a ")?;
    let tag = &html[start..];
    let h = tag.find("href=\"")? + "href=\"".len();
    let rest = &tag[h..];
    Some(
        rest[..rest.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

async fn audit_lists_logins_newest_first_without_secrets(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let anon = app.client();
    let failed = app.login(&anon, ADMIN, "wrong-secret-passphrase").await;
    assert_eq!(failed.status(), 401);
    let c = app.admin_client().await;
    let r = c.get(app.url("/admin/audit")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let vary = r
        .headers()
        .get("vary")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(vary.to_lowercase().contains("hx-request"), "{vary}");
    let page = r.text().await.unwrap();
    let success = page
        .find("data-action=\"login.password\" data-outcome=\"success\"")
        .expect("successful login listed");
    let failure = page
        .find("data-action=\"login.password\" data-outcome=\"failure\"")
        .expect("failed login listed");
    assert!(success < failure, "newest first");
    assert_eq!(
        row_actions(&page),
        ["login.password", "login.password", "setup.first_admin"]
    );
    for column in [
        "Time",
        "Actor",
        "Action",
        "Target",
        "Client IP",
        "Outcome",
        "Detail",
    ] {
        assert!(page.contains(&format!(">{column}</th>")), "{column}");
    }
    assert!(
        page.contains("<td data-label=\"Client IP\">127.0.0.1</td>"),
        "client ip shown"
    );
    assert!(
        page.contains("<td data-label=\"Actor\">anonymous</td>"),
        "failed login has no actor"
    );
    assert!(page.contains("UTC</td>"), "time shown");
    assert!(!page.contains("wrong-secret-passphrase"), "no secret");
    assert!(!page.contains(ADMIN_PASSWORD), "no secret");
    assert!(!page.contains("argon2"), "no hash");
    assert!(!page.contains("id=\"audit-older\""), "one page only");
}

async fn audit_filters_by_user_and_action(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    create_account(&app, "Bob", "bob's passphrase", "user").await;
    let anon = app.client();
    assert_eq!(app.login(&anon, "bob", "not bob's").await.status(), 401);
    let c = app.admin_client().await;

    // User: case-insensitive "contains", on the actor or the target.
    let page = get(&app, &c, "/admin/audit?user=BoB").await;
    assert_eq!(row_actions(&page), ["login.password", "user.create"]);
    assert!(page.contains("value=\"BoB\""), "filter kept in the form");
    // Action: exact, or a prefix ending in a dot.
    let page = get(&app, &c, "/admin/audit?action=login.").await;
    assert_eq!(row_actions(&page), ["login.password", "login.password"]);
    assert!(page.contains("<option value=\"login.\" selected>"));
    // Written as the list shows it, `login.*`, it is the same group.
    let page = get(&app, &c, "/admin/audit?action=login.*").await;
    assert_eq!(row_actions(&page), ["login.password", "login.password"]);
    assert!(page.contains("<option value=\"login.\" selected>"));
    let page = get(&app, &c, "/admin/audit?action=user.create").await;
    assert_eq!(row_actions(&page), ["user.create"]);
    let page = get(&app, &c, "/admin/audit?action=user").await;
    assert!(row_ids(&page).is_empty(), "no prefix match without the dot");
    assert!(page.contains("id=\"audit-empty\""));
    // Both, and LIKE wildcards match literally.
    let page = get(&app, &c, "/admin/audit?user=bob&action=login.").await;
    assert_eq!(row_actions(&page), ["login.password"]);
    assert!(page.contains("data-outcome=\"failure\""));
    let page = get(&app, &c, "/admin/audit?user=%25").await;
    assert!(row_ids(&page).is_empty(), "% is not a wildcard");

    // The API takes the same filters.
    let (api, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let v: serde_json::Value = api
        .get(app.url("/api/admin/audit?user=bob&action=login."))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["next"], serde_json::Value::Null);
    let events = v["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    assert_eq!(events[0]["action"], "login.password");
    assert_eq!(events[0]["target"], "Bob");
    assert_eq!(events[0]["actor"], "anonymous");
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["ip"], "127.0.0.1");
    assert!(events[0]["at"].as_i64().unwrap() > 1_700_000_000);
    let r = api
        .get(app.url("/api/admin/audit?before=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "BAD_REQUEST");
}

async fn audit_pages_50_at_a_time(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let rows: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "({}, 'tester', 'test.event', 't{i}', 'success')",
                1_800_000_000 + i
            )
        })
        .collect();
    exec(
        &app,
        format!(
            "INSERT INTO audit_events (at, actor, action, target, outcome) VALUES {}",
            rows.join(", ")
        ),
    )
    .await;
    let c = app.admin_client().await;
    let first = get(&app, &c, "/admin/audit?action=test.event").await;
    let first_ids = row_ids(&first);
    assert_eq!(first_ids.len(), 50);
    assert!(first_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        first.contains("<td data-label=\"Target\">t59</td>")
            && !first.contains("<td data-label=\"Target\">t9</td>")
    );
    assert!(!first.contains("id=\"audit-newest\""));
    let older = href_of(&first, "audit-older").expect("an Older link");
    assert_eq!(
        older,
        format!("/admin/audit?action=test.event&before={}", first_ids[49]),
        "the link carries the filters and the last id"
    );
    let second = get(&app, &c, &older).await;
    let second_ids = row_ids(&second);
    assert_eq!(second_ids.len(), 10);
    assert!(second_ids[0] < first_ids[49], "no overlap");
    assert!(second.contains("<td data-label=\"Target\">t0</td>"));
    assert!(!second.contains("id=\"audit-older\""), "last page");
    assert_eq!(
        href_of(&second, "audit-newest").as_deref(),
        Some("/admin/audit?action=test.event")
    );

    // The API pages the same way.
    let (api, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let v: serde_json::Value = api
        .get(app.url("/api/admin/audit?action=test.event"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 50);
    assert_eq!(v["next"], first_ids[49]);
    let v: serde_json::Value = api
        .get(app.url(&format!(
            "/api/admin/audit?action=test.event&before={}",
            first_ids[49]
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 10);
    assert_eq!(v["events"][9]["target"], "t0");
    assert_eq!(v["next"], serde_json::Value::Null);
}

async fn audit_htmx_gets_the_table_fragment(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let full = get(&app, &c, "/admin/audit?action=login.").await;
    assert!(full.contains("<html") && full.contains("id=\"audit-filter\""));
    assert!(full.contains("hx-get=\"/admin/audit\"") && full.contains("hx-push-url=\"true\""));
    let r = c
        .get(app.url("/admin/audit?action=login."))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("vary")
            .is_some_and(|v| v.to_str().unwrap().contains("HX-Request"))
    );
    let fragment = r.text().await.unwrap();
    assert!(
        fragment
            .trim_start()
            .starts_with("<div id=\"audit-results\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("<html") && !fragment.contains("audit-filter"));
    assert_eq!(row_actions(&fragment), ["login.password"]);
    // The same rows as the page: one markup for both.
    let start = full.find("<div id=\"audit-results\">").unwrap();
    assert!(full[start..].starts_with(fragment.trim()));
    // A history restore after a cache miss needs the whole page.
    let restore = c
        .get(app.url("/admin/audit"))
        .header("HX-Request", "true")
        .header("HX-History-Restore-Request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(restore.contains("<html"));
}

async fn audit_is_for_admins_only(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    create_account(&app, "carol", "carol's passphrase", "user").await;
    let c = app.client();
    assert_eq!(
        app.login(&c, "carol", "carol's passphrase").await.status(),
        303
    );
    for path in [
        "/admin/audit",
        "/admin/audit?action=login.",
        "/admin/settings",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let page = r.text().await.unwrap();
        assert!(!page.contains("data-action="), "{path}");
    }
    for path in ["/api/admin/audit", "/api/admin/settings"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "FORBIDDEN");
    }
    let anon = app.client();
    let r = anon.get(app.url("/admin/audit")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Fadmin%2Faudit",
        "anonymous visitors sign in first"
    );
    let r = anon.get(app.url("/api/admin/audit")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
