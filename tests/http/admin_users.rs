//! User administration through the JSON API and the rules behind it.

use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, sql, user};

both_databases!(
    admins_manage_accounts_through_the_api,
    nobody_removes_themselves_and_an_admin_always_remains,
    two_admins_removing_each_other_at_once_leave_one,
    pending_and_rejected_accounts_see_only_their_status,
    non_admins_cannot_reach_admin_routes,
    validation_errors_name_the_field,
    the_kept_table_pages_show_every_commit_at_once,
);

async fn post(
    c: &reqwest::Client,
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    c.post(app.url(path))
        .header("X-CSRF-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn create(c: &reqwest::Client, app: &TestApp, token: &str, body: Value) -> Value {
    let r = post(c, app, token, "/api/admin/users", body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn admins_manage_accounts_through_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let created = create(
        &c,
        &app,
        &t,
        json!({"username": "bob", "email": "bob@example.com", "role": "user"}),
    )
    .await;
    let id = created["user"]["id"].as_i64().unwrap();
    let otp = created["one_time_password"].as_str().unwrap().to_owned();
    assert!(otp.len() >= 20, "{otp}");
    assert!(!created.to_string().contains("argon2"));
    let (bob, _) = api_login(&app, "bob", &otp).await;

    let listed: Value = c
        .get(app.url("/api/admin/users?q=BOB"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["users"].as_array().unwrap().len(), 1);
    assert_eq!(listed["users"][0]["username"], "bob");

    let r = c
        .patch(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &t)
        .json(&json!({"role": "viewer", "display_name": "Bob B."}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["role"], "viewer");
    assert_eq!(v["display_name"], "Bob B.");
    assert_eq!(
        v["email"], "bob@example.com",
        "PATCH keeps what it does not name"
    );

    // Disabling ends Bob's session at once.
    assert_eq!(
        bob.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = post(
        &c,
        &app,
        &t,
        &format!("/api/admin/users/{id}/disable"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        bob.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(app.login(&app.client(), "bob", &otp).await.status(), 401);
    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/enable"),
            json!({})
        )
        .await
        .status(),
        200
    );

    // Reset password: old one stops, new one works.
    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/password"),
            json!({"password": "brand new pass"})
        )
        .await
        .status(),
        200
    );
    assert_eq!(app.login(&app.client(), "bob", &otp).await.status(), 401);
    assert_eq!(
        app.login(&app.client(), "bob", "brand new pass")
            .await
            .status(),
        303
    );

    // Soft delete hides, restore brings back, purge needs delete + typed confirmation.
    let r = c
        .delete(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["deleted"], true);
    assert_eq!(v["status"], "disabled");
    let listed: Value = c
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        listed["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["username"] != "bob")
    );
    let deleted: Value = c
        .get(app.url("/api/admin/users?status=deleted"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["users"][0]["username"], "bob");
    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/restore"),
            json!({})
        )
        .await
        .status(),
        200
    );
    let r = post(
        &c,
        &app,
        &t,
        &format!("/api/admin/users/{id}/purge"),
        json!({"confirm": "bob"}),
    )
    .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "PURGE_NEEDS_DELETE"
    );
    c.delete(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &t)
        .send()
        .await
        .unwrap();
    let r = post(
        &c,
        &app,
        &t,
        &format!("/api/admin/users/{id}/purge"),
        json!({"confirm": "Bobby"}),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "PURGE_NOT_CONFIRMED"
    );
    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/purge"),
            json!({"confirm": "bob"})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        c.get(app.url(&format!("/api/admin/users/{id}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    // Every change is in the audit log, with no secret in it.
    let log = sql_audit(&app).await;
    for action in [
        "user.create",
        "user.edit",
        "user.disable",
        "user.enable",
        "user.password_reset",
        "user.delete",
        "user.restore",
        "user.purge",
    ] {
        assert!(
            log.iter().any(|(a, _)| a == action),
            "{action} not audited: {log:?}"
        );
    }
    assert!(
        log.iter()
            .all(|(_, d)| !d.contains("brand new pass") && !d.contains(&otp))
    );
}

async fn sql_audit(app: &TestApp) -> Vec<(String, String)> {
    use diesel::{QueryableByName, RunQueryDsl, sql_types};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::Text)]
        action: String,
        #[diesel(sql_type = sql_types::Text)]
        detail: String,
    }
    app.state
        .db
        .run(|c| {
            diesel::sql_query("SELECT action, COALESCE(detail, '') AS detail FROM audit_events")
                .load::<Row>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.detail))
        .collect()
}

async fn nobody_removes_themselves_and_an_admin_always_remains(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let me = user(&app, ADMIN).await.id;
    for (action, code) in [
        ("disable", "CANNOT_DISABLE_SELF"),
        ("reject", "CANNOT_REJECT_SELF"),
    ] {
        let r = post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{me}/{action}"),
            json!({}),
        )
        .await;
        assert_eq!(r.status(), 409, "{action}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code);
    }
    let r = c
        .delete(app.url(&format!("/api/admin/users/{me}")))
        .header("X-CSRF-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "CANNOT_DELETE_SELF"
    );
    let r = c
        .patch(app.url(&format!("/api/admin/users/{me}")))
        .header("X-CSRF-Token", &t)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "CANNOT_DEMOTE_SELF"
    );
    assert!(user(&app, ADMIN).await.is_active_admin());

    // Someone else (the CLI, a second admin) cannot remove the last active admin either.
    let err = hallpass::service::admin::apply(
        &app.state.db,
        &app.state.hasher,
        hallpass::service::Actor::system("test"),
        me,
        hallpass::service::admin::Change::Disable,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            hallpass::service::ServiceError::Refused(hallpass::service::Refusal::Policy(
                hallpass::domain::policy::PolicyError::LastActiveAdmin
            ))
        ),
        "{err}"
    );
    assert!(user(&app, ADMIN).await.is_active_admin());
}

async fn two_admins_removing_each_other_at_once_leave_one(db: Db) {
    use hallpass::service::Actor;
    use hallpass::service::admin::{self, Change, InitialPassword, Profile};
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = user(&app, ADMIN).await.id;
    let (b_user, _) = admin::create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        Profile::parse("second", "", "", "admin").unwrap(),
        InitialPassword::Given(hallpass::domain::Password::parse("second admin pw").unwrap()),
    )
    .await
    .unwrap();
    let b = b_user.id;
    for round in 0..50 {
        let (s1, s2) = (app.state.clone(), app.state.clone());
        // Even rounds: each disables the other. Odd rounds: each demotes the other.
        let (c1, c2) = if round % 2 == 0 {
            (Change::Disable, Change::Disable)
        } else {
            (
                Change::Edit(Profile::parse("second", "", "", "user").unwrap()),
                Change::Edit(Profile::parse(ADMIN, "admin@example.com", "", "user").unwrap()),
            )
        };
        let t1 = tokio::spawn(async move {
            admin::apply(
                &s1.db,
                &s1.hasher,
                Actor {
                    user_id: Some(a),
                    ..Actor::system("a")
                },
                b,
                c1,
            )
            .await
        });
        let t2 = tokio::spawn(async move {
            admin::apply(
                &s2.db,
                &s2.hasher,
                Actor {
                    user_id: Some(b),
                    ..Actor::system("b")
                },
                a,
                c2,
            )
            .await
        });
        let (r1, r2) = (t1.await.unwrap(), t2.await.unwrap());
        let admins = app
            .state
            .db
            .run(move |c| hallpass::db::users::count_other_active_admins(c, -1))
            .await
            .unwrap();
        assert!(
            admins >= 1,
            "round {round}: no active admin left ({r1:?} / {r2:?})"
        );
        assert!(
            r1.is_ok() != r2.is_ok() || admins == 2,
            "round {round}: exactly one wins ({r1:?} / {r2:?})"
        );
        // Put both back for the next round.
        sql(
            &app,
            "UPDATE users SET role = 'admin', status = 'active', deleted_at = NULL",
        )
        .await;
    }
}

async fn pending_and_rejected_accounts_see_only_their_status(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let created = create(
        &c,
        &app,
        &t,
        json!({"username": "pat", "password": "pat password 1", "role": "user"}),
    )
    .await;
    let id = created["user"]["id"].as_i64().unwrap();
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key = 'pat'",
    )
    .await;
    let pat = app.client();
    assert_eq!(
        app.login(&pat, "pat", "pat password 1").await.status(),
        303,
        "pending accounts may sign in"
    );
    for path in ["/", "/account"] {
        let r = pat.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.text().await.unwrap().contains("Awaiting approval"));
    }
    let r = pat.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "ACCOUNT_PENDING"
    );

    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/reject"),
            json!({})
        )
        .await
        .status(),
        200
    );
    let pat = app.client();
    assert_eq!(
        app.login(&pat, "pat", "pat password 1").await.status(),
        303,
        "rejection survives re-login"
    );
    let r = pat.get(app.url("/")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("Access not approved"));
    let r = pat.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "ACCOUNT_REJECTED"
    );
    // Signing out still works for them.
    let token = app.csrf(&pat, "/").await;
    assert_eq!(
        pat.post(app.url("/logout"))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        303
    );

    assert_eq!(
        post(
            &c,
            &app,
            &t,
            &format!("/api/admin/users/{id}/approve"),
            json!({})
        )
        .await
        .status(),
        200
    );
    let (pat, _) = api_login(&app, "pat", "pat password 1").await;
    assert_eq!(
        pat.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn non_admins_cannot_reach_admin_routes(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    create(
        &c,
        &app,
        &t,
        json!({"username": "vera", "password": "vera password", "role": "viewer"}),
    )
    .await;
    create(
        &c,
        &app,
        &t,
        json!({"username": "uma", "password": "uma password", "role": "user"}),
    )
    .await;
    for (name, pw) in [("vera", "vera password"), ("uma", "uma password")] {
        let (u, ut) = api_login(&app, name, pw).await;
        let r = u.get(app.url("/api/admin/users")).send().await.unwrap();
        assert_eq!(r.status(), 403, "{name}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"]["code"],
            "FORBIDDEN"
        );
        let r = post(
            &u,
            &app,
            &ut,
            "/api/admin/users",
            json!({"username": "evil"}),
        )
        .await;
        assert_eq!(r.status(), 403);
        let page = u
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !page.contains("/admin/users"),
            "no admin navigation for {name}"
        );
    }
    let admin_page = c
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(admin_page.contains("href=\"/admin/users\""));
}

async fn validation_errors_name_the_field(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = post(&c, &app, &t, "/api/admin/users", json!({"username": "-x", "email": "nope", "display_name": "d".repeat(101), "role": "god", "password": "short"})).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in ["username", "email", "display_name", "role", "password"] {
        assert!(fields.contains(&f), "{f} missing in {v}");
    }
    let r = post(
        &c,
        &app,
        &t,
        "/api/admin/users",
        json!({"username": "ADMIN", "email": "ADMIN@example.com"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already taken"),
        "{v}"
    );
    assert_eq!(v["error"]["fields"][1]["field"], "email");
}

/// The user table's pages are kept while nothing they show changes (`service::users::
/// KeptPages`). Every write below is raw SQL on another connection, as another process or an
/// operator's psql would make it, and the very next request must show it — the last
/// sign-in too, which PostgreSQL announces on a channel of its own.
async fn the_kept_table_pages_show_every_commit_at_once(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    create(&c, &app, &t, json!({"username": "carol", "role": "user"})).await;
    let json = |c: &reqwest::Client| {
        let url = app.url("/api/admin/users?q=carol");
        let c = c.clone();
        async move {
            let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            v["users"].as_array().unwrap().clone()
        }
    };
    let html = |c: &reqwest::Client| {
        let url = app.url("/admin/users?q=carol");
        let c = c.clone();
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    // Read twice: the second answer comes from the kept page.
    for _ in 0..2 {
        let users = json(&c).await;
        assert_eq!(users.len(), 1);
        assert_eq!(users[0]["role"], "user");
        assert!(users[0]["last_login_at"].is_null());
        let page = html(&c).await;
        assert!(
            page.contains("badge-user") && page.contains("never"),
            "{page}"
        );
    }

    sql(
        &app,
        "UPDATE users SET role = 'viewer' WHERE username = 'carol'",
    )
    .await;
    assert_eq!(json(&c).await[0]["role"], "viewer");
    assert!(html(&c).await.contains("badge-viewer"));

    sql(
        &app,
        "UPDATE users SET last_login_at = 1700000000 WHERE username = 'carol'",
    )
    .await;
    assert_eq!(json(&c).await[0]["last_login_at"], 1_700_000_000);
    let page = html(&c).await;
    assert!(
        page.contains("2023-11-14") && !page.contains("never"),
        "{page}"
    );

    sql(
        &app,
        "INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) \
         SELECT id, 'k', 'hp_x', 'hmac', 0 FROM users WHERE username = 'carol'",
    )
    .await;
    assert!(html(&c).await.contains("1 API key"));

    create(
        &c,
        &app,
        &t,
        json!({"username": "carolyn", "role": "user", "display_name": "Caro <b>&\"</b>"}),
    )
    .await;
    assert_eq!(json(&c).await.len(), 2);
    let page = html(&c).await;
    assert_eq!(page.matches("<tr id=\"user-").count(), 2);
    // The row's texts are escaped once when the row is built (`web::ui::Escaped`), not twice.
    assert!(
        page.contains("Caro &#60;b&#62;&#38;&#34;&#60;/b&#62;"),
        "{page}"
    );
    assert!(!page.contains("<b>&") && !page.contains("&#38;#"), "{page}");
}
