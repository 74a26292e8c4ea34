//! The HTML user table: search, filters, pages, and every action with and without htmx.

use crate::support::{Db, TestApp, csrf_in, sql, user};

both_databases!(
    the_table_searches_filters_and_pages,
    row_actions_work_as_forms_and_as_htmx_swaps,
    creating_a_user_shows_the_one_time_password_once,
    edit_reset_and_purge_re_render_errors,
    the_table_is_for_admins_only,
    row_actions_keep_the_view_and_explain_refusals,
    error_pages_keep_the_navigation,
);

/// Inserts `n` accounts straight into the table (no password hashing: fast).
async fn bulk_users(app: &TestApp, n: usize) {
    let db = app.state.db.clone();
    db.run(move |c| {
        use diesel::RunQueryDsl;
        for i in 0..n {
            let status = if i % 10 == 0 { "pending" } else { "active" };
            let role = if i % 3 == 0 { "viewer" } else { "user" };
            diesel::sql_query(format!(
                "INSERT INTO users (username, username_key, email, email_key, role, status, session_version, created_at, updated_at) \
                 VALUES ('member{i:03}', 'member{i:03}', 'm{i}@example.com', 'm{i}@example.com', '{role}', '{status}', 1, {}, 0)",
                1000 + i
            ))
            .execute(c)?;
        }
        // Rows written behind the app's back get their search key as after an upgrade.
        hallpass::db::user_search::fill_search_keys(c)?;
        Ok::<_, hallpass::db::DbError>(())
    })
    .await
    .unwrap();
}

fn rows(html: &str) -> usize {
    html.matches("<tr id=\"user-").count()
}

async fn the_table_searches_filters_and_pages(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 60).await;
    let c = app.admin_client().await;
    let page = c.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(rows(&html), 50, "50 a page");
    assert!(
        html.contains("id=\"nav-pending\" title=\"Accounts awaiting approval\">6<"),
        "pending count in the navigation"
    );
    let next = html
        .split("id=\"next-page\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let second = c
        .get(app.url(&next))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&second), 11, "61 accounts in all");
    assert!(!second.contains("id=\"next-page\""));
    assert!(second.contains("member059"));

    let search = c
        .get(app.url("/admin/users?q=MEMBER01"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&search), 10, "member010..member019");
    let pending = c
        .get(app.url("/admin/users?status=pending"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&pending), 6);
    let viewers = c
        .get(app.url("/admin/users?role=viewer&status=pending"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&viewers), 2, "member000, member030");
    let newest = c
        .get(app.url("/admin/users?sort=created&dir=desc"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first_row = newest.split("<tr id=\"user-").nth(1).unwrap();
    assert!(first_row.contains("admin"), "the admin was created last");
    let bad = c
        .get(app.url("/admin/users?sort=shoe-size"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // htmx asks for the table only.
    let r = c
        .get(app.url("/admin/users?q=member00"))
        .header("HX-Request", "true")
        .header("HX-Target", "user-table")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["vary"], "HX-Request");
    let fragment = r.text().await.unwrap();
    assert!(
        fragment.trim_start().starts_with("<div id=\"user-table\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"));
    assert_eq!(rows(&fragment), 10);
}

async fn row_actions_work_as_forms_and_as_htmx_swaps(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 2).await;
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users").await;
    let target = user(&app, "member001").await.id;

    // Without JavaScript: a confirmation page, then the form.
    let confirm = c
        .get(app.url(&format!("/admin/users/{target}/confirm/disable")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("Disable member001?"));
    assert!(confirm.contains(&format!("action=\"/admin/users/{target}/disable\"")));
    let r = c
        .post(app.url(&format!("/admin/users/{target}/disable")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        user(&app, "member001").await.status,
        hallpass::domain::Status::Disabled
    );

    // With htmx: the response is the new row.
    let r = c
        .post(app.url(&format!("/admin/users/{target}/enable")))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row = r.text().await.unwrap();
    assert!(
        row.trim_start()
            .starts_with(&format!("<tr id=\"user-{target}\"")),
        "{row}"
    );
    assert!(row.contains("badge-active"));

    let pending = user(&app, "member000").await.id;
    let row = c
        .post(app.url(&format!("/admin/users/{pending}/approve")))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(row.contains("badge-active"), "{row}");

    // A refused action explains itself in the row.
    let me = user(&app, "admin").await.id;
    let row = c
        .post(app.url(&format!("/admin/users/{me}/disable")))
        .header("HX-Request", "true")
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("You cannot disable your own account."),
        "{row}"
    );
    let r = c
        .post(app.url(&format!("/admin/users/{me}/disable")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("You cannot disable your own account.")
    );

    // Delete hides the account, restore brings it back.
    c.post(app.url(&format!("/admin/users/{target}/delete")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let table = c
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!table.contains("member001"));
    let deleted = c
        .get(app.url("/admin/users?status=deleted"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(deleted.contains("member001") && deleted.contains("Purge…"));
    c.post(app.url(&format!("/admin/users/{target}/restore")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(user(&app, "member001").await.deleted_at.is_none());
}

async fn creating_a_user_shows_the_one_time_password_once(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users/new").await;
    let r = c
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "x"),
            ("email", "bad"),
            ("display_name", "Nina"),
            ("role", "user"),
            ("password_mode", "set"),
            ("password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"username-error\"")
            && page.contains("id=\"email-error\"")
            && page.contains("id=\"password-error\"")
    );
    assert!(page.contains("value=\"Nina\""), "input kept");
    assert!(!page.contains("short\""), "password not echoed");

    let r = c
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "nina"),
            ("email", "nina@example.com"),
            ("display_name", "Nina"),
            ("role", "viewer"),
            ("password_mode", "generate"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    let otp = page
        .split("id=\"one-time-password\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(otp.len() >= 20);
    assert_eq!(app.login(&app.client(), "nina", &otp).await.status(), 303);
    let table = c
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!table.contains(&otp), "shown once");
    assert_eq!(
        user(&app, "nina").await.role,
        hallpass::domain::Role::Viewer
    );
}

async fn edit_reset_and_purge_re_render_errors(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 2).await;
    let c = app.admin_client().await;
    let id = user(&app, "member001").await.id;
    let form = c
        .get(app.url(&format!("/admin/users/{id}/edit")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("value=\"member001\""));
    let token = csrf_in(&form).unwrap();
    let r = c
        .post(app.url(&format!("/admin/users/{id}")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "member000"),
            ("email", "m1@example.com"),
            ("display_name", ""),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("This username is already taken.")
    );
    let r = c
        .post(app.url(&format!("/admin/users/{id}")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "renamed"),
            ("email", "m1@example.com"),
            ("display_name", "Renamed"),
            ("role", "admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let renamed = user(&app, "renamed").await;
    assert!(renamed.is_active_admin());

    let r = c
        .post(app.url(&format!("/admin/users/{id}/password")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("new_password", "new password 1"),
            ("new_password_confirm", "new password 2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The two passwords do not match.")
    );
    let r = c
        .post(app.url(&format!("/admin/users/{id}/password")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("new_password", "new password 1"),
            ("new_password_confirm", "new password 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.login(&app.client(), "renamed", "new password 1")
            .await
            .status(),
        303
    );

    sql(&app, "UPDATE users SET deleted_at = 1, status = 'disabled', role = 'user' WHERE username_key = 'renamed'").await;
    let r = c
        .post(app.url(&format!("/admin/users/{id}/purge")))
        .form(&[("csrf_token", token.as_str()), ("confirm", "RENAMED")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Type the username exactly")
    );
    let r = c
        .post(app.url(&format!("/admin/users/{id}/purge")))
        .form(&[("csrf_token", token.as_str()), ("confirm", "renamed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        c.get(app.url(&format!("/admin/users/{id}/edit")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn the_table_is_for_admins_only(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users/new").await;
    c.post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "uma"),
            ("role", "user"),
            ("password_mode", "set"),
            ("password", "uma password"),
        ])
        .send()
        .await
        .unwrap();
    let uma = app.client();
    assert_eq!(app.login(&uma, "uma", "uma password").await.status(), 303);
    for path in [
        "/admin/users",
        "/admin/users/new",
        "/admin/users/1/edit",
        "/admin/users/1/purge",
        "/admin/users/1/confirm/disable",
    ] {
        let r = uma.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let t = app.csrf(&uma, "/account").await;
    let r = uma
        .post(app.url("/admin/users/1/disable"))
        .form(&[("csrf_token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(user(&app, "admin").await.is_active_admin());
}

both_databases!(the_methods_column_counts_api_keys);

async fn the_methods_column_counts_api_keys(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    sql(&app, "INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) SELECT id, 'ci', 'hp_abcd', 'h1', 0 FROM users WHERE username_key = 'admin'").await;
    sql(&app, "INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) SELECT id, 'cd', 'hp_efgh', 'h2', 0 FROM users WHERE username_key = 'admin'").await;
    let c = app.admin_client().await;
    let html = c
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(">password, 2 API keys</td>"), "{html}");

    // The row an action swaps in shows the same methods as the table (it showed only the
    // password: "none" for this passwordless account with a key).
    bulk_users(&app, 2).await;
    let id = user(&app, "member001").await.id;
    sql(&app, &format!("INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) VALUES ({id}, 'k', 'hp_ijkl', 'h3', 0)")).await;
    let token = app.csrf(&c, "/admin/users").await;
    for action in ["disable", "enable"] {
        let r = c
            .post(app.url(&format!("/admin/users/{id}/{action}")))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{action}");
        let row = r.text().await.unwrap();
        assert!(row.contains(">1 API key</td>"), "{action}: {row}");
    }
}

both_databases!(editing_a_row_in_place_with_htmx);

async fn editing_a_row_in_place_with_htmx(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 2).await;
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users").await;
    let id = user(&app, "member001").await.id;
    let htmx = |r: reqwest::RequestBuilder| {
        r.header("HX-Request", "true")
            .header("X-CSRF-Token", &token)
    };

    let edit = htmx(c.get(app.url(&format!("/admin/users/{id}/edit"))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        edit.trim_start()
            .starts_with(&format!("<tr id=\"user-{id}\" class=\"editing\">")),
        "{edit}"
    );
    assert!(edit.contains("value=\"member001\""));

    // A mistake comes back in the same row, input kept (200 so htmx swaps it in).
    let r = htmx(c.post(app.url(&format!("/admin/users/{id}"))))
        .form(&[
            ("username", "member000"),
            ("email", "m1@example.com"),
            ("display_name", "Kept"),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row = r.text().await.unwrap();
    assert!(
        row.contains("This username is already taken.") && row.contains("value=\"Kept\""),
        "{row}"
    );

    let row = htmx(c.post(app.url(&format!("/admin/users/{id}"))))
        .form(&[
            ("username", "member-one"),
            ("email", "m1@example.com"),
            ("display_name", "One"),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row.trim_start()
            .starts_with(&format!("<tr id=\"user-{id}\">")),
        "{row}"
    );
    assert!(row.contains(">member-one</a>") && row.contains("badge-viewer"));
    let cancel = htmx(c.get(app.url(&format!("/admin/users/{id}/row"))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(cancel.contains(">member-one</a>"));
}

both_databases!(resetting_a_password_in_place_with_htmx);

async fn resetting_a_password_in_place_with_htmx(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users/new").await;
    c.post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "rita"),
            ("role", "user"),
            ("password_mode", "set"),
            ("password", "rita password"),
        ])
        .send()
        .await
        .unwrap();
    let rita = app.client();
    assert_eq!(
        app.login(&rita, "rita", "rita password").await.status(),
        303
    );
    let id = user(&app, "rita").await.id;
    let htmx = |r: reqwest::RequestBuilder| {
        r.header("HX-Request", "true")
            .header("X-CSRF-Token", &token)
    };
    let edit = htmx(c.get(app.url(&format!("/admin/users/{id}/edit"))))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(edit.contains(&format!("hx-post=\"/admin/users/{id}/password\"")));
    let r = htmx(c.post(app.url(&format!("/admin/users/{id}/password"))))
        .form(&[
            ("new_password", "fresh password"),
            ("new_password_confirm", "other password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let row = r.text().await.unwrap();
    assert!(
        row.contains("The two passwords do not match.") && row.contains("class=\"editing\""),
        "{row}"
    );
    assert!(!row.contains("fresh password"));
    let row = htmx(c.post(app.url(&format!("/admin/users/{id}/password"))))
        .form(&[
            ("new_password", "fresh password"),
            ("new_password_confirm", "fresh password"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        row.trim_start()
            .starts_with(&format!("<tr id=\"user-{id}\">")),
        "{row}"
    );
    assert_eq!(
        rita.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "rita's session ended"
    );
    assert_eq!(
        app.login(&app.client(), "rita", "fresh password")
            .await
            .status(),
        303
    );
}

/// The table's view in the address (search, filters, order), as the rows carry it.
const VIEW: &str = "q=member&status=active&sort=created&dir=desc";

async fn text(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Only the actions that can apply are offered (nothing that removes yourself); without
/// JavaScript every row action and the edit form come back to the same view of the table;
/// a refusal is shown beside the row's actions and in the page's message area, with htmx
/// too; and an htmx action refreshes the header's pending count out of band.
async fn row_actions_keep_the_view_and_explain_refusals(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 12).await;
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users").await;
    let me = user(&app, "admin").await.id;
    let target = user(&app, "member011").await.id;

    // The rows carry the view; your own row offers no Disable, Delete or Reject.
    let (_, table) = text(c.get(app.url(&format!("/admin/users?{VIEW}")))).await;
    let (_, all) = text(c.get(app.url("/admin/users"))).await;
    let (_, pending) = text(c.get(app.url("/admin/users?q=member&status=pending"))).await;
    assert!(
        pending.contains(r#"name="back" value="q=member&#38;status=pending""#),
        "{pending}"
    );
    assert!(table.contains(&format!(
        "/admin/users/{target}/confirm/disable?back=q%3Dmember%26status%3Dactive%26sort%3Dcreated%26dir%3Ddesc"
    )));
    for action in ["disable", "delete", "reject"] {
        assert!(
            !all.contains(&format!("/admin/users/{me}/confirm/{action}")),
            "{action} offered on your own row"
        );
    }
    assert!(all.contains(&format!("/admin/users/{target}/confirm/delete")));

    // Disable through the confirmation page: back to the same view, with what was done.
    let (_, confirm) = text(c.get(app.url(&format!(
        "/admin/users/{target}/confirm/disable?back=q%3Dmember%26status%3Dactive%26sort%3Dcreated%26dir%3Ddesc%26next%3D%2F%2Fevil"
    ))))
    .await;
    assert!(
        confirm.contains(
            r#"href="/admin/users?q=member&#38;status=active&#38;sort=created&#38;dir=desc""#
        ),
        "{confirm}"
    );
    assert!(
        !confirm.contains("evil"),
        "only the table's own parameters are kept"
    );
    let back = format!("{VIEW}&after=");
    let r = c
        .post(app.url(&format!("/admin/users/{target}/disable")))
        .form(&[("csrf_token", token.as_str()), ("back", back.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, format!("/admin/users?{VIEW}&notice=disabled"));
    let (_, page) = text(c.get(app.url(&to))).await;
    assert!(page.contains("Account disabled"), "{page}");
    assert!(page.contains(r#"value="member""#), "the search is kept");

    // The edit form, opened from the view, returns to it.
    let (_, edit) = text(c.get(app.url(&format!(
        "/admin/users/{target}/edit?back=q%3Dmember%26sort%3Dcreated"
    ))))
    .await;
    assert!(
        edit.contains(r#"name="back" value="q=member&#38;sort=created""#),
        "{edit}"
    );
    let r = c
        .post(app.url(&format!("/admin/users/{target}")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "member011"),
            ("email", "m11@example.com"),
            ("display_name", "Eleven"),
            ("role", "user"),
            ("back", "q=member&sort=created"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "/admin/users?q=member&sort=created&notice=saved"
    );
    // Your own edit form offers no other role.
    let (_, own) = text(c.get(app.url(&format!("/admin/users/{me}/edit")))).await;
    assert!(own.contains("You cannot change your own role."), "{own}");
    assert!(!own.contains(r#"<option value="user""#), "{own}");

    // A refused action (a page opened before, another tab…), without JavaScript: the same
    // view, the reason in the message area and by the row's actions.
    let (status, page) = text(
        c.post(app.url(&format!("/admin/users/{me}/disable")))
            .form(&[("csrf_token", token.as_str()), ("back", "q=adm")]),
    )
    .await;
    assert_eq!(status, 409);
    let why = "You cannot disable your own account.";
    let messages = page.split(r#"<div id="messages">"#).nth(1).unwrap();
    assert!(
        messages.split("</div>").next().unwrap().contains(why),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"id="user-{me}-error">{why}<"#)),
        "{page}"
    );
    assert!(
        page.contains(r#"value="adm""#),
        "the search is kept: {page}"
    );

    // The same with htmx: the row with the reason, and the message area out of band.
    let (status, row) = text(
        c.post(app.url(&format!("/admin/users/{me}/disable")))
            .header("HX-Request", "true")
            .header("HX-Target", format!("user-{me}"))
            .header("X-CSRF-Token", &token)
            .form(&[("back", "q=adm")]),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        row.contains(&format!(r#"id="user-{me}-error">{why}<"#)),
        "{row}"
    );
    let oob = row
        .split(r#"<div id="messages" hx-swap-oob="true">"#)
        .nth(1);
    assert!(oob.is_some_and(|m| m.contains(why)), "{row}");

    // Approving with htmx refreshes the header's pending count out of band.
    let pending = user(&app, "member000").await.id;
    let (_, before) = text(c.get(app.url("/admin/users"))).await;
    assert!(
        before.contains(r#"id="nav-pending" title="Accounts awaiting approval">2<"#),
        "{before}"
    );
    let (_, row) = text(
        c.post(app.url(&format!("/admin/users/{pending}/approve")))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", &token),
    )
    .await;
    assert!(
        row.contains(
            r#"hx-swap-oob="true" id="nav-pending" title="Accounts awaiting approval">1<"#
        ),
        "{row}"
    );
    assert!(row.contains("Account approved"), "{row}");
}

/// A 404 or 403 page keeps the signed-in person's navigation (home, their account, Sign
/// out) with its status; anonymous visitors and htmx requests get the bare page.
async fn error_pages_keep_the_navigation(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let (status, page) = text(c.get(app.url("/no/such/page"))).await;
    assert_eq!(status, 404);
    assert!(page.contains("Page not found"), "{page}");
    assert!(
        page.contains(r#"<nav class="nav" aria-label="Main">"#),
        "{page}"
    );
    assert!(page.contains(r#"action="/logout""#), "{page}");
    assert!(
        page.contains(r#"id="nav-users""#),
        "an admin's links: {page}"
    );
    let (status, page) = text(c.get(app.url("/admin/users/999999/edit"))).await;
    assert_eq!(status, 404);
    assert!(page.contains(r#"action="/logout""#), "{page}");

    // A 403: a plain user on an admin page.
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/users").await;
    let r = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "pat"),
            ("role", "user"),
            ("password_mode", "set"),
            ("password", "pat's long password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pat = app.client();
    assert_eq!(
        app.login(&pat, "pat", "pat's long password").await.status(),
        303
    );
    let (status, page) = text(pat.get(app.url("/admin/users"))).await;
    assert_eq!(status, 403);
    assert!(page.contains(r#"action="/logout""#), "{page}");
    assert!(
        !page.contains(r#"id="nav-users""#),
        "no admin links: {page}"
    );

    // Signed out: nothing to navigate.
    let (status, page) = text(app.client().get(app.url("/no/such/page"))).await;
    assert_eq!(status, 404);
    assert!(!page.contains(r#"action="/logout""#), "{page}");
}

both_databases!(a_kept_page_shows_each_admin_their_own_rows);

/// The CSRF token of the forms in row `id` of a table page.
fn row_token(html: &str, id: i64) -> String {
    let start = html.find(&format!("<tr id=\"user-{id}\"")).unwrap();
    let row = &html[start..start + html[start..].find("</tr>").unwrap()];
    csrf_in(row).unwrap_or_else(|| panic!("no form in row {id}: {row}"))
}

/// A kept page's rows are rendered once and shared (`web::ui::admin_users::rows`), but each
/// admin still sees their own: the forms carry the token of the session that asked, "(you)"
/// marks the viewer's own row, and a refused action's message stays on the page it was
/// refused on.
async fn a_kept_page_shows_each_admin_their_own_rows(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    bulk_users(&app, 3).await;
    crate::support::add_user(&app, "ada", "admin").await;
    let (pending, ada, admin) = (
        user(&app, "member000").await.id,
        user(&app, "ada").await.id,
        user(&app, "admin").await.id,
    );
    let page = |c: &reqwest::Client| {
        let (c, url) = (c.clone(), app.url("/admin/users"));
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let you = |html: &str, id: i64| {
        let start = html.find(&format!("<tr id=\"user-{id}\"")).unwrap();
        let row = &html[start..start + html[start..].find("</tr>").unwrap()];
        row.contains("(you)")
    };
    let first = app.admin_client().await;
    let second = app.client();
    let r = app
        .login(&second, "ada", crate::support::MEMBER_PASSWORD)
        .await;
    assert_eq!(r.status(), 303);

    // The first admin's two views, then the second's: the last three are the kept page.
    let (_, mine) = (page(&first).await, page(&first).await);
    let theirs = page(&second).await;
    assert_eq!(rows(&mine), 5);
    assert_eq!(mine.matches("(you)").count(), 1, "{mine}");
    assert!(you(&mine, admin) && !you(&mine, ada));
    assert_eq!(theirs.matches("(you)").count(), 1, "{theirs}");
    assert!(you(&theirs, ada) && !you(&theirs, admin));
    // No actions on yourself: the viewer's own row has no "Disable…".
    assert!(!theirs.contains(&format!("/admin/users/{ada}/confirm/disable")));
    assert!(theirs.contains(&format!("/admin/users/{admin}/confirm/disable")));

    // Each page's row forms carry its own session's token: the second admin's is accepted for
    // the second admin, and the first admin's is refused for them.
    let (token_mine, token_theirs) = (row_token(&mine, pending), row_token(&theirs, pending));
    assert_ne!(token_mine, token_theirs);
    let approve = |token: String| {
        second
            .post(app.url(&format!("/admin/users/{pending}/approve")))
            .form(&[("csrf_token", token)])
            .send()
    };
    assert_eq!(approve(token_mine).await.unwrap().status(), 403);
    assert_eq!(approve(token_theirs).await.unwrap().status(), 303);
    assert_eq!(
        user(&app, "member000").await.status,
        hallpass::domain::Status::Active
    );

    // A refused action shows its message in the row on the re-rendered (kept) page, and
    // only there: the next plain view of the same page has no message.
    let token = csrf_in(&page(&first).await).unwrap();
    let r = first
        .post(app.url(&format!("/admin/users/{admin}/disable")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let refused = r.text().await.unwrap();
    assert!(
        refused.contains(&format!("id=\"user-{admin}-error\"")),
        "{refused}"
    );
    assert!(!page(&first).await.contains("field-error"));
}
