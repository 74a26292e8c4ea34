//! Groups (issue 11, point 5): `/admin/groups` and `/api/admin/groups…`, memberships on the
//! group page and on the user's edit page, the user table's group filter, the audit events,
//! and `settings.rules_version`, which every write to groups or memberships must move (the
//! forward-auth rule cache reloads on it).

use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, audit_events, sql, user};

both_databases!(
    admins_manage_groups_through_the_api,
    the_api_refuses_what_it_cannot_do_clearly,
    admins_manage_groups_on_the_pages,
    member_forms_answer_htmx_with_the_member_list,
    deleting_a_group_says_which_apps_name_it,
    a_users_groups_are_set_on_the_edit_page,
    the_user_table_filters_by_group,
    only_admins_see_groups,
    membership_changes_reach_forward_auth_on_the_next_request,
);

/// `settings.rules_version`, which forward-auth's rule cache watches.
pub async fn rules_version(app: &TestApp) -> i64 {
    app.state
        .db
        .run(hallpass::db::settings::rules_version)
        .await
        .unwrap()
}

/// `SELECT COUNT(*) AS n …` on the app's database.
pub async fn count(app: &TestApp, query: &str) -> i64 {
    use diesel::{QueryableByName, RunQueryDsl, sql_types};
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = sql_types::BigInt)]
        n: i64,
    }
    let query = query.to_owned();
    app.state
        .db
        .run(move |c| {
            diesel::sql_query(query)
                .load::<N>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()[0]
        .n
}

/// Creates an active account with a password; returns its id.
pub async fn account(app: &TestApp, username: &str, role: &str) -> i64 {
    use hallpass::service::admin::{InitialPassword, Profile, create_user};
    let (u, _) = create_user(
        &app.state.db,
        &app.state.hasher,
        hallpass::service::Actor::system("test"),
        Profile::parse(username, "", "", role).unwrap(),
        InitialPassword::Given(hallpass::domain::Password::parse("member password").unwrap()),
    )
    .await
    .unwrap();
    u.id
}

struct Api<'a> {
    app: &'a TestApp,
    c: reqwest::Client,
    token: String,
}

impl Api<'_> {
    async fn admin(app: &TestApp) -> Api<'_> {
        let (c, token) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
        Api { app, c, token }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.app.url(path);
        let req = match method {
            "GET" => self.c.get(url),
            "POST" => self.c.post(url),
            "PATCH" => self.c.patch(url),
            "DELETE" => self.c.delete(url),
            m => panic!("{m}"),
        }
        .header("X-CSRF-Token", &self.token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn admins_manage_groups_through_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let bob = account(&app, "bob", "user").await;
    let carol = account(&app, "carol", "user").await;

    let v0 = rules_version(&app).await;
    let (s, g) = api
        .send(
            "POST",
            "/api/admin/groups",
            Some(json!({"name": " Family ", "description": "Our people"})),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(
        (g["name"].as_str(), g["members"].as_i64()),
        (Some("Family"), Some(0))
    );
    let id = g["id"].as_i64().unwrap();
    let v1 = rules_version(&app).await;
    assert!(v1 > v0, "creating a group moves rules_version");

    // Members by username and by id.
    let (s, m) = api
        .send(
            "POST",
            &format!("/api/admin/groups/{id}/members"),
            Some(json!({"username": "BOB"})),
        )
        .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(
        (m["user_id"].as_i64(), m["source"].as_str()),
        (Some(bob), Some("admin"))
    );
    let v2 = rules_version(&app).await;
    assert!(v2 > v1, "adding a member moves rules_version");
    let (s, _) = api
        .send(
            "POST",
            &format!("/api/admin/groups/{id}/members"),
            Some(json!({"user_id": carol})),
        )
        .await;
    assert_eq!(s, 201);
    let v3 = rules_version(&app).await;
    assert!(v3 > v2);

    let (s, list) = api.send("GET", "/api/admin/groups", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["groups"][0]["name"], "Family");
    assert_eq!(list["groups"][0]["members"], 2);
    let (s, members) = api
        .send("GET", &format!("/api/admin/groups/{id}/members"), None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"]);
    assert_eq!(members["members"][0]["source"], "admin");
    assert_eq!(members["members"][0]["status"], "active");

    // Rename (and keep the description it does not name), then describe.
    let (s, renamed) = api
        .send(
            "PATCH",
            &format!("/api/admin/groups/{id}"),
            Some(json!({"name": "Household"})),
        )
        .await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["name"], "Household");
    assert_eq!(renamed["description"], "Our people");
    let v4 = rules_version(&app).await;
    assert!(v4 > v3, "a rename moves rules_version");
    // The same name in another case is this group's own: allowed.
    let (s, v) = api
        .send(
            "PATCH",
            &format!("/api/admin/groups/{id}"),
            Some(json!({"name": "HOUSEHOLD", "description": ""})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["description"], Value::Null);
    let v5 = rules_version(&app).await;
    assert!(v5 > v4);
    // Nothing changes: nothing written.
    let (s, _) = api
        .send("PATCH", &format!("/api/admin/groups/{id}"), Some(json!({})))
        .await;
    assert_eq!(s, 200);
    assert_eq!(rules_version(&app).await, v5);

    let (s, one) = api
        .send("GET", &format!("/api/admin/groups/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (one["name"].as_str(), one["members"].as_i64()),
        (Some("HOUSEHOLD"), Some(2))
    );
    assert_eq!(one["apps"], json!([]));

    let (s, _) = api
        .send(
            "DELETE",
            &format!("/api/admin/groups/{id}/members/{bob}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let v6 = rules_version(&app).await;
    assert!(v6 > v5, "removing a member moves rules_version");

    let (s, _) = api
        .send("DELETE", &format!("/api/admin/groups/{id}"), None)
        .await;
    assert_eq!(s, 204);
    assert!(
        rules_version(&app).await > v6,
        "deleting moves rules_version"
    );
    let (s, e) = api
        .send("GET", &format!("/api/admin/groups/{id}"), None)
        .await;
    assert_eq!(s, 404);
    assert_eq!(e["error"]["code"], "NOT_FOUND");
    assert_eq!(e["error"]["message"], "No such group.");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM group_members").await,
        0
    );

    // Every write is in the audit log, by the admin.
    let created = audit_events(&app, "group.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].actor.as_str(), created[0].target.as_deref()),
        (ADMIN, Some("Family"))
    );
    let renamed = audit_events(&app, "group.rename").await;
    assert_eq!(renamed.len(), 2);
    assert_eq!(renamed[1].detail.as_deref(), Some("Family -> Household"));
    assert_eq!(audit_events(&app, "group.update").await.len(), 1);
    let added = audit_events(&app, "group.member_add").await;
    let targets: Vec<_> = added.iter().map(|e| e.target.clone().unwrap()).collect();
    assert_eq!(targets, ["carol", "bob"]);
    assert_eq!(added[1].detail.as_deref(), Some("Family"));
    let removed = audit_events(&app, "group.member_remove").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].target.as_deref(), Some("bob"));
    let deleted = audit_events(&app, "group.delete").await;
    assert_eq!(deleted[0].target.as_deref(), Some("HOUSEHOLD"));
    assert_eq!(deleted[0].detail.as_deref(), Some("1 member"));
}

async fn the_api_refuses_what_it_cannot_do_clearly(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let dana = account(&app, "dana", "user").await;
    let (_, g) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Media"})))
        .await;
    let id = g["id"].as_i64().unwrap();
    let (_, other) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Other"})))
        .await;
    let other = other["id"].as_i64().unwrap();
    let before = rules_version(&app).await;

    // The same name in any case: 409, for a new group and for a rename.
    let (s, e) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "mEDIA"})))
        .await;
    assert_eq!(s, 409, "{e}");
    assert_eq!(e["error"]["code"], "GROUP_NAME_TAKEN");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("mEDIA"),
        "{e}"
    );
    let (s, e) = api
        .send(
            "PATCH",
            &format!("/api/admin/groups/{other}"),
            Some(json!({"name": "media"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("GROUP_NAME_TAKEN"))
    );

    // Bad names and descriptions: 422 by field.
    let (s, e) = api
        .send(
            "POST",
            "/api/admin/groups",
            Some(json!({"name": "a,b", "description": "x".repeat(201)})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(e["error"]["code"], "VALIDATION_FAILED");
    let fields: Vec<&str> = e["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "description"]);
    let (s, e) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": 5})))
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("BAD_REQUEST")));

    // Unknown groups: 404 everywhere.
    for (method, path, body) in [
        ("GET", "/api/admin/groups/9999".to_owned(), None),
        (
            "PATCH",
            "/api/admin/groups/9999".to_owned(),
            Some(json!({"name": "x"})),
        ),
        ("DELETE", "/api/admin/groups/9999".to_owned(), None),
        ("GET", "/api/admin/groups/9999/members".to_owned(), None),
        (
            "POST",
            "/api/admin/groups/9999/members".to_owned(),
            Some(json!({"user_id": dana})),
        ),
        (
            "DELETE",
            format!("/api/admin/groups/9999/members/{dana}"),
            None,
        ),
    ] {
        let (s, e) = api.send(method, &path, body).await;
        assert_eq!(s, 404, "{method} {path}: {e}");
        assert_eq!(e["error"]["message"], "No such group.", "{method} {path}");
    }

    let members = format!("/api/admin/groups/{id}/members");
    // Unknown accounts, deleted ones, members already, and a body naming nobody.
    let (s, e) = api
        .send("POST", &members, Some(json!({"username": "nobody"})))
        .await;
    assert_eq!(
        (s, e["error"]["message"].as_str()),
        (404, Some("No such account."))
    );
    let (s, _) = api
        .send("POST", &members, Some(json!({"user_id": 424242})))
        .await;
    assert_eq!(s, 404);
    let (s, e) = api.send("POST", &members, Some(json!({}))).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("VALIDATION_FAILED"))
    );
    let (s, _) = api
        .send(
            "POST",
            &members,
            Some(json!({"user_id": dana, "username": "dana"})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = api
        .send("POST", &members, Some(json!({"user_id": dana})))
        .await;
    assert_eq!(s, 201);
    let after_add = rules_version(&app).await;
    let (s, e) = api
        .send("POST", &members, Some(json!({"username": "Dana"})))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("ALREADY_MEMBER"))
    );
    assert_eq!(
        e["error"]["message"],
        "dana is already a member of this group."
    );
    let erin = account(&app, "erin", "user").await;
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled', deleted_at = 1 WHERE id = {erin}"),
    )
    .await;
    let (s, e) = api
        .send("POST", &members, Some(json!({"username": "erin"})))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("ACCOUNT_DELETED")),
        "{e}"
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("restore"));
    // Not a member: 404.
    let (s, e) = api.send("DELETE", &format!("{members}/{erin}"), None).await;
    assert_eq!(s, 404, "{e}");
    // Refusals write nothing.
    assert_eq!(rules_version(&app).await, after_add);
    assert!(after_add == before + 1, "only the one add moved it");
    assert_eq!(audit_events(&app, "group.member_add").await.len(), 1);
}

/// The body of a page.
async fn page(c: &reqwest::Client, app: &TestApp, path: &str) -> (u16, String) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post_form(
    c: &reqwest::Client,
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    htmx: Option<&str>,
) -> (u16, String, String) {
    let token = app.csrf(c, "/admin/groups").await;
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    let mut req = c.post(app.url(path)).form(&form);
    if let Some(target) = htmx {
        req = req.header("HX-Request", "true").header("HX-Target", target);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

async fn admins_manage_groups_on_the_pages(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    account(&app, "bob", "user").await;
    let (s, html) = page(&c, &app, "/admin/groups").await;
    assert_eq!(s, 200);
    assert!(
        html.contains(r#"href="/admin/groups" id="nav-groups""#),
        "nav link"
    );
    assert!(html.contains(r#"id="no-groups""#));

    // A mistake: the message by its field, what was typed kept.
    let (s, _, html) = post_form(
        &c,
        &app,
        "/admin/groups",
        &[("name", "  "), ("description", "Kept text")],
        None,
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        html.contains(r#"<p class="field-error" id="name-error">Enter a group name.</p>"#),
        "{html}"
    );
    assert!(html.contains(r#"value="Kept text""#));

    let v0 = rules_version(&app).await;
    let (s, location, _) = post_form(
        &c,
        &app,
        "/admin/groups",
        &[("name", "Family"), ("description", "Our people")],
        None,
    )
    .await;
    assert_eq!(s, 303);
    let id: i64 = location
        .strip_prefix("/admin/groups/")
        .and_then(|l| l.strip_suffix("?notice=created"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rules_version(&app).await > v0);

    // The same name in another case: refused by the field, input kept.
    let (s, _, html) = post_form(
        &c,
        &app,
        "/admin/groups",
        &[("name", "FAMILY"), ("description", "again")],
        None,
    )
    .await;
    assert_eq!(s, 409);
    assert!(
        html.contains("A group named &#34;FAMILY&#34; already exists")
            || html.contains("A group named &quot;FAMILY&quot; already exists"),
        "{html}"
    );
    assert!(html.contains(r#"value="FAMILY""#) && html.contains(r#"value="again""#));

    let (s, html) = page(&c, &app, "/admin/groups").await;
    assert_eq!(s, 200);
    assert!(html.contains(&format!(
        r#"<a href="/admin/groups/{id}" class="group-name">Family</a>"#
    )));
    assert!(html.contains("Our people"));

    // Rename on the group's page.
    let (s, html) = page(&c, &app, &format!("/admin/groups/{id}?notice=created")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<h1>Family</h1>") && html.contains(r#"id="notice""#));
    assert!(html.contains(r#"id="no-members""#));
    let v1 = rules_version(&app).await;
    let (s, location, _) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}"),
        &[("name", "Household"), ("description", "")],
        None,
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, format!("/admin/groups/{id}?notice=saved").as_str())
    );
    assert!(rules_version(&app).await > v1);
    let (_, html) = page(&c, &app, &format!("/admin/groups/{id}")).await;
    assert!(html.contains("<h1>Household</h1>"));
    let (s, _, html) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}"),
        &[("name", "x,y"), ("description", "")],
        None,
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains(r#"id="name-error""#) && html.contains(r#"value="x,y""#));

    // Members without JavaScript: add by username, then remove.
    let v2 = rules_version(&app).await;
    let (s, location, _) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}/members"),
        &[("username", "Bob")],
        None,
    )
    .await;
    assert_eq!(
        (s, location),
        (303, format!("/admin/groups/{id}?notice=member_added"))
    );
    assert!(rules_version(&app).await > v2);
    let bob = user(&app, "bob").await.id;
    let (_, html) = page(&c, &app, &format!("/admin/groups/{id}")).await;
    assert!(
        html.contains(&format!(r#"<tr id="member-{bob}">"#)),
        "{html}"
    );
    assert!(html.contains("an administrator"));
    let (s, _, html) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}/members"),
        &[("username", "nobody")],
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert!(html.contains("No account has this username."), "{html}");
    assert!(html.contains(r#"value="nobody""#));
    let v3 = rules_version(&app).await;
    let (s, location, _) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}/members/{bob}/remove"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (s, location),
        (303, format!("/admin/groups/{id}?notice=member_removed"))
    );
    assert!(rules_version(&app).await > v3);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM group_members").await,
        0
    );

    // Unknown groups: the 404 page.
    let (s, _) = page(&c, &app, "/admin/groups/9999").await;
    assert_eq!(s, 404);
    assert_eq!(audit_events(&app, "group.member_add").await.len(), 1);
    assert_eq!(audit_events(&app, "group.member_remove").await.len(), 1);
    assert_eq!(audit_events(&app, "group.rename").await.len(), 1);
}

async fn member_forms_answer_htmx_with_the_member_list(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let bob = account(&app, "bob", "user").await;
    let api = Api::admin(&app).await;
    let (_, g) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Media"})))
        .await;
    let id = g["id"].as_i64().unwrap();
    let path = format!("/admin/groups/{id}/members");

    let (s, _, html) = post_form(&c, &app, &path, &[("username", "bob")], Some("members")).await;
    assert_eq!(s, 200);
    assert!(
        html.trim_start().starts_with(r#"<div id="members">"#),
        "{html}"
    );
    assert!(!html.contains("<html"), "a fragment, not a page");
    assert!(html.contains(&format!(r#"<tr id="member-{bob}">"#)));
    assert!(html.contains("Member added."));
    // A mistake comes back inside the fragment (200, so htmx swaps it), input kept.
    let (s, _, html) = post_form(&c, &app, &path, &[("username", "bob")], Some("members")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("bob is already a member of this group."),
        "{html}"
    );
    assert!(html.contains(r#"aria-invalid="true""#) && html.contains(r#"value="bob""#));
    let (s, _, html) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}/members/{bob}/remove"),
        &[],
        Some("members"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        html.contains(r#"id="no-members""#) && !html.contains("<html"),
        "{html}"
    );
    // Removing someone who is not a member: a 404, not a silent success.
    let (s, _, _) = post_form(
        &c,
        &app,
        &format!("/admin/groups/{id}/members/{bob}/remove"),
        &[],
        Some("members"),
    )
    .await;
    assert_eq!(s, 404);
}

async fn deleting_a_group_says_which_apps_name_it(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let api = Api::admin(&app).await;
    let bob = account(&app, "bob", "user").await;
    let (_, g) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Family"})))
        .await;
    let id = g["id"].as_i64().unwrap();
    api.send(
        "POST",
        &format!("/api/admin/groups/{id}/members"),
        Some(json!({"user_id": bob})),
    )
    .await;
    // Two apps whose rules name the group (written as the apps screens would store them).
    for (name, key) in [("Grafana", "grafana"), ("Jellyfin", "jellyfin")] {
        sql(
            &app,
            format!(
                "INSERT INTO apps (name, name_key, hosts, access, created_at, updated_at) VALUES ('{name}', '{key}', '{key}.example.com', 'restricted', 0, 0)"
            ),
        )
        .await;
        sql(
            &app,
            format!(
                "INSERT INTO app_groups (app_id, group_id) SELECT id, {id} FROM apps WHERE name_key = '{key}'"
            ),
        )
        .await;
    }
    let (_, html) = page(&c, &app, &format!("/admin/groups/{id}")).await;
    assert!(
        html.contains("2 apps name this group: Grafana, Jellyfin."),
        "{html}"
    );
    let (s, html) = page(&c, &app, &format!("/admin/groups/{id}/delete")).await;
    assert_eq!(s, 200);
    assert!(html.contains("<h1>Delete Family</h1>"));
    assert!(html.contains("Its 1 member loses it"), "{html}");
    assert!(
        html.contains("2 apps name this group: Grafana, Jellyfin."),
        "{html}"
    );
    assert!(html.contains(&format!(r#"action="/admin/groups/{id}/delete""#)));

    let v = rules_version(&app).await;
    let (s, location, _) =
        post_form(&c, &app, &format!("/admin/groups/{id}/delete"), &[], None).await;
    assert_eq!(
        (s, location.as_str()),
        (303, "/admin/groups?notice=deleted")
    );
    assert!(rules_version(&app).await > v);
    // The memberships and the apps' references went with it; the apps and the account stay.
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM app_groups").await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM group_members").await,
        0
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM apps").await, 2);
    assert_eq!(user(&app, "bob").await.id, bob);
    let (_, html) = page(&c, &app, "/admin/groups?notice=deleted").await;
    assert!(html.contains("Group deleted."));
    let deleted = audit_events(&app, "group.delete").await;
    assert_eq!(
        deleted[0].detail.as_deref(),
        Some("1 member; removed from apps: Grafana, Jellyfin")
    );
    let (s, _) = page(&c, &app, &format!("/admin/groups/{id}/delete")).await;
    assert_eq!(s, 404);
}

async fn a_users_groups_are_set_on_the_edit_page(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let api = Api::admin(&app).await;
    let bob = account(&app, "bob", "user").await;
    let (_, html) = page(&c, &app, &format!("/admin/users/{bob}/edit")).await;
    assert!(html.contains(r#"id="user-groups""#) && html.contains(r#"id="no-groups""#));
    let mut ids = Vec::new();
    for name in ["Family", "Media", "Ops"] {
        let (_, g) = api
            .send("POST", "/api/admin/groups", Some(json!({"name": name})))
            .await;
        ids.push(g["id"].as_i64().unwrap().to_string());
    }
    let (_, html) = page(&c, &app, &format!("/admin/users/{bob}/edit")).await;
    assert!(
        html.contains(&format!(
            r#"<input type="checkbox" name="group" value="{}" id="group-{}"> Family"#,
            ids[0], ids[0]
        )),
        "{html}"
    );

    let path = format!("/admin/users/{bob}/groups");
    let v0 = rules_version(&app).await;
    let (s, location, _) = post_form(
        &c,
        &app,
        &path,
        &[("group", &ids[0]), ("group", &ids[1])],
        None,
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, "/admin/users?notice=groups_saved")
    );
    assert!(rules_version(&app).await > v0);
    let of = |app: &TestApp| {
        let db = app.state.db.clone();
        async move {
            db.run(move |c| hallpass::db::groups::of_user(c, bob))
                .await
                .unwrap()
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(of(&app).await, ["Family", "Media"]);
    let (_, html) = page(&c, &app, &format!("/admin/users/{bob}/edit")).await;
    assert!(html.contains(&format!(
        r#"value="{}" id="group-{}" checked> Media"#,
        ids[1], ids[1]
    )));

    // Unticking Family and ticking Ops: one of each.
    let v1 = rules_version(&app).await;
    let (s, _, _) = post_form(
        &c,
        &app,
        &path,
        &[("group", &ids[1]), ("group", &ids[2])],
        None,
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(of(&app).await, ["Media", "Ops"]);
    assert!(rules_version(&app).await > v1);
    // The same again changes nothing and writes nothing.
    let v2 = rules_version(&app).await;
    let (s, _, _) = post_form(
        &c,
        &app,
        &path,
        &[("group", &ids[1]), ("group", &ids[2])],
        None,
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(rules_version(&app).await, v2);
    let added: Vec<_> = audit_events(&app, "group.member_add")
        .await
        .into_iter()
        .map(|e| e.detail.unwrap())
        .collect();
    assert_eq!(added, ["Ops", "Media", "Family"]);
    let removed = audit_events(&app, "group.member_remove").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(
        (removed[0].target.as_deref(), removed[0].detail.as_deref()),
        (Some("bob"), Some("Family"))
    );

    // Nothing ticked: out of every group.
    let (s, _, _) = post_form(&c, &app, &path, &[], None).await;
    assert_eq!(s, 303);
    assert!(of(&app).await.is_empty());
    // Not a group id, an unknown group, a deleted account.
    let (s, _, _) = post_form(&c, &app, &path, &[("group", "family")], None).await;
    assert_eq!(s, 400);
    let (s, _, _) = post_form(&c, &app, &path, &[("group", "9999")], None).await;
    assert_eq!(s, 404);
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled', deleted_at = 1 WHERE id = {bob}"),
    )
    .await;
    let (s, _, html) = post_form(&c, &app, &path, &[("group", &ids[0])], None).await;
    assert_eq!(s, 409);
    assert!(html.contains("bob is a deleted account"), "{html}");
    assert!(of(&app).await.is_empty());
    let (s, _, _) = post_form(&c, &app, "/admin/users/9999/groups", &[], None).await;
    assert_eq!(s, 404);
}

async fn the_user_table_filters_by_group(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let api = Api::admin(&app).await;
    let (_, g) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Crowd"})))
        .await;
    let id = g["id"].as_i64().unwrap();
    let (_, other) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Other"})))
        .await;
    let other = other["id"].as_i64().unwrap();
    // 55 members (more than a page) and a few accounts outside the group.
    sql(
        &app,
        "INSERT INTO users (username, username_key, role, status, session_version, created_at, updated_at) \
         SELECT 'm' || n, 'm' || n, 'user', 'active', 1, 1000 + n, 1000 + n FROM \
         (SELECT a.x * 10 + b.x AS n FROM \
           (SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) a, \
           (SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) b) nums \
         WHERE n < 58",
    )
    .await;
    sql(
        &app,
        format!(
            "INSERT INTO group_members (group_id, user_id, source, created_at) \
             SELECT {id}, id, 'admin', 0 FROM users WHERE username_key LIKE 'm%' AND username_key NOT IN ('m0', 'm1', 'm2')"
        ),
    )
    .await;
    sql(
        &app,
        format!(
            "INSERT INTO group_members (group_id, user_id, source, created_at) \
             SELECT {other}, id, 'admin', 0 FROM users WHERE username_key IN ('m0', 'admin')"
        ),
    )
    .await;
    let member = |name: &str| {
        name.strip_prefix('m')
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 3)
    };

    // HTML: the filter select, a page of members only, and the next page keeps the filter
    // and the order.
    let (s, html) = page(
        &c,
        &app,
        &format!("/admin/users?group={id}&sort=created&dir=desc"),
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        html.contains(&format!(r#"<option value="{id}" selected>Crowd</option>"#)),
        "{html}"
    );
    let names = usernames(&html);
    assert_eq!(names.len(), 50);
    assert!(names.iter().all(|n| member(n)), "{names:?}");
    assert_eq!(names[0], "m57", "newest first");
    let next = html
        .split(r#"id="next-page" hx-get=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(
        next.contains(&format!("group={id}")) && next.contains("sort=created"),
        "{next}"
    );
    let (s, html) = page(&c, &app, &next).await;
    assert_eq!(s, 200);
    let rest = usernames(&html);
    assert_eq!(rest.len(), 5, "{rest:?}");
    assert!(rest.iter().all(|n| member(n)), "{rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("m3"));
    // The htmx table fragment filters the same way.
    let r = c
        .get(app.url(&format!("/admin/users?group={other}")))
        .header("HX-Request", "true")
        .header("HX-Target", "user-table")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert_eq!(usernames(&html), ["admin", "m0"]);

    // JSON: the same filter.
    let (s, v) = api
        .send("GET", &format!("/api/admin/users?group={other}"), None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "m0"]);
    let (s, v) = api
        .send("GET", &format!("/api/admin/users?group={id}&q=m1"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["users"].as_array().unwrap().len(),
        10,
        "m10…m19 and not m1: {v}"
    );
    let (s, v) = api.send("GET", "/api/admin/users?group=9999", None).await;
    assert_eq!((s, v["users"].as_array().map(Vec::len)), (200, Some(0)));
    let (s, v) = api.send("GET", "/api/admin/users?group=crowd", None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("BAD_REQUEST")));
    let (s, _) = page(&c, &app, "/admin/users?group=crowd").await;
    assert_eq!(s, 400);
}

/// Usernames of the user table's rows, in order.
fn usernames(html: &str) -> Vec<String> {
    html.split(r#"class="username">"#)
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

async fn only_admins_see_groups(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    account(&app, "vic", "viewer").await;
    let c = app.client();
    assert_eq!(app.login(&c, "vic", "member password").await.status(), 303);
    let (s, html) = page(&c, &app, "/").await;
    assert_eq!(s, 200);
    assert!(!html.contains("nav-groups"), "no Groups link for a viewer");
    let (s, _) = page(&c, &app, "/admin/groups").await;
    assert_eq!(s, 403);
    let (s, _) = page(&app.client(), &app, "/admin/groups").await;
    assert_eq!(s, 303, "anonymous: to the sign-in page");
}

/// An app open to the members of group `gid` (stored as the apps screens will), and the
/// rules version bumped as they do.
pub async fn app_for_group(app: &TestApp, name: &str, host: &str, gid: i64) {
    use hallpass::domain::apps::{Access, AppSource, HostPattern};
    let (name, hosts) = (name.to_owned(), [HostPattern::parse(host).unwrap()]);
    app.state
        .db
        .run(move |c| {
            hallpass::db::apps::insert(
                c,
                &hallpass::db::apps::AppWrite {
                    name: &name,
                    url: None,
                    icon: None,
                    hosts: &hosts,
                    paths: &[],
                    access: &Access::Restricted {
                        roles: vec![],
                        groups: vec![gid],
                        users: vec![],
                    },
                    viewers_read_only: false,
                    source: AppSource::Ui,
                },
            )?;
            hallpass::db::settings::bump_rules_version(c)
        })
        .await
        .unwrap();
}

/// `GET /api/authz/forward-auth` for `https://host/` as a browser behind Traefik or Caddy:
/// the status and the `Remote-Groups` header.
pub async fn forward_auth(app: &TestApp, c: &reqwest::Client, host: &str) -> (u16, String) {
    let r = c
        .get(app.url("/api/authz/forward-auth"))
        .header("Accept", "text/html")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", "/")
        .send()
        .await
        .unwrap();
    let groups = r
        .headers()
        .get("remote-groups")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), groups)
}

/// "Membership changes take effect on the next request": every way an admin changes a
/// group reaches forward-auth at once, through its caches, on both databases.
async fn membership_changes_reach_forward_auth_on_the_next_request(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.server.public_url = Some("https://auth.example.com".parse().unwrap()),
        true,
    )
    .await
    else {
        return;
    };
    let api = Api::admin(&app).await;
    let admin_pages = app.admin_client().await;
    let dave = account(&app, "dave", "user").await;
    let (_, g) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Crew"})))
        .await;
    let id = g["id"].as_i64().unwrap();
    app_for_group(&app, "Deck", "deck.example.com", id).await;
    let c = app.client();
    assert_eq!(app.login(&c, "dave", "member password").await.status(), 303);
    let ask = || forward_auth(&app, &c, "deck.example.com");
    for _ in 0..2 {
        assert_eq!(ask().await.0, 403, "not a member yet");
    }
    let members = format!("/api/admin/groups/{id}/members");
    api.send("POST", &members, Some(json!({"user_id": dave})))
        .await;
    assert_eq!(
        ask().await,
        (200, "Crew".to_owned()),
        "added through the API"
    );
    assert_eq!(ask().await, (200, "Crew".to_owned()));
    api.send(
        "PATCH",
        &format!("/api/admin/groups/{id}"),
        Some(json!({"name": "Deck hands"})),
    )
    .await;
    assert_eq!(ask().await, (200, "Deck hands".to_owned()), "renamed");
    let (s, _, _) = post_form(
        &admin_pages,
        &app,
        &format!("/admin/groups/{id}/members/{dave}/remove"),
        &[],
        None,
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(ask().await.0, 403, "removed on the group page");
    let (s, _, _) = post_form(
        &admin_pages,
        &app,
        &format!("/admin/users/{dave}/groups"),
        &[("group", &id.to_string())],
        None,
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(ask().await.0, 200, "added on the user's edit page");
    let (s, _) = api
        .send("DELETE", &format!("/api/admin/groups/{id}"), None)
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        ask().await.0,
        403,
        "the group is gone, and with it the app's reference"
    );
}
