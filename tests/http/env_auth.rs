//! The development bypass (`HALLPASS_AUTH_BYPASS`) and the built-in break-glass admin
//! (`HALLPASS_ADMIN_KEY`).

use hallpass::config::Config;
use hallpass::env_auth::EnvAuth;

use crate::support::{Db, TestApp, TestDb, csrf_in, sql};

const KEY: &str = "break-glass-key-0123456789";

fn env(pairs: &[(&str, &str)]) -> EnvAuth {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    EnvAuth::from_env(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())).unwrap()
}

async fn me(app: &TestApp, c: &reqwest::Client) -> (u16, serde_json::Value) {
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// Runs the setup wizard from loopback, creating the admin `owner`.
async fn set_up(app: &TestApp) {
    let c = app.client();
    let html = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_in(&html).unwrap();
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", app.state.setup.code().unwrap().as_str()),
            ("username", "owner"),
            ("email", "owner@example.com"),
            ("password", "owner-password-1"),
            ("password_confirm", "owner-password-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "setup");
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> (reqwest::Client, u16) {
    let c = app.client();
    let status = app.login(&c, username, password).await.status().as_u16();
    (c, status)
}

both_databases!(
    bypass_signs_every_request_in_as_the_dev_admin,
    break_glass_admin_signs_in_with_the_key_only,
    break_glass_reserves_the_username_and_cannot_rotate_in_the_app,
);

async fn bypass_signs_every_request_in_as_the_dev_admin(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.env_auth = env(&[("HALLPASS_AUTH_BYPASS", "1")]),
        false,
    )
    .await
    else {
        return;
    };
    let stranger = app.client();
    let (status, body) = me(&app, &stranger).await;
    assert_eq!(status, 200);
    assert_eq!(body["username"], "dev-admin");
    assert_eq!(body["role"], "admin");
    assert_eq!(body["auth_method"], "bypass");
    let page = stranger.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("id=\"bypass-banner\""));
    // Refused where it would be dangerous, unless explicitly forced.
    for (bind, extra) in [
        ("0.0.0.0:0", vec![]),
        ("127.0.0.1:0", vec![("HALLPASS_ENV", "production")]),
    ] {
        let mut config = Config::default();
        config.server.bind = bind.parse().unwrap();
        let mut vars = vec![("HALLPASS_AUTH_BYPASS", "true")];
        vars.extend(extra);
        config.env_auth = env(&vars);
        let e = hallpass::server::prepare(config, None).await.err().unwrap();
        assert!(e.to_string().contains("refusing to start"), "{e}");
    }
    let test_db = TestDb::new(db).unwrap();
    let forced = TestApp::start_on(
        test_db,
        |c| {
            c.server.bind = "0.0.0.0:0".parse().unwrap();
            c.env_auth = env(&[
                ("HALLPASS_AUTH_BYPASS", "1"),
                ("HALLPASS_ALLOW_INSECURE_AUTH_BYPASS", "1"),
            ]);
        },
        false,
    )
    .await;
    assert!(forced.state.dev_admin.is_some());
}

async fn break_glass_admin_signs_in_with_the_key_only(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.env_auth = env(&[("HALLPASS_ADMIN_KEY", KEY)]),
        false,
    )
    .await
    else {
        return;
    };
    set_up(&app).await;
    let (_, status) = sign_in(&app, "admin", "not-the-key-at-all").await;
    assert_eq!(status, 401);
    let (c, status) = sign_in(&app, "ADMIN", KEY).await;
    assert_eq!(status, 303);
    let (status, body) = me(&app, &c).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["username"].as_str(), body["role"].as_str()),
        (Some("admin"), Some("admin"))
    );
    // Real admin powers, without a database row.
    assert_eq!(
        c.get(app.url("/admin/users"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        sql(
            &app,
            "UPDATE users SET id = id WHERE username_key = 'admin'"
        )
        .await,
        0
    );
    assert_eq!(
        sql(&app, "UPDATE audit_events SET id = id WHERE action = 'login.break_glass' AND outcome = 'success' AND actor = 'admin (break-glass)'").await,
        1
    );
    assert_eq!(
        sql(&app, "UPDATE audit_events SET id = id WHERE action = 'login.break_glass' AND outcome = 'failure'").await,
        1
    );
    // Password sign-in switched off for everyone else does not lock the break-glass admin out.
    sql(
        &app,
        "UPDATE settings SET sso_enabled = 1, local_login_enabled = 0",
    )
    .await;
    let (_, status) = sign_in(&app, "admin", KEY).await;
    assert_eq!(status, 303, "break-glass works whatever the switches say");
    // A restart with another key ends the old sessions.
    let data = app.stop_keep_db().await;
    let app = TestApp::start_on(
        data,
        |c| c.env_auth = env(&[("HALLPASS_ADMIN_KEY", "another-key-0123456789")]),
        false,
    )
    .await;
    let (status, _) = me(&app, &c).await;
    assert_eq!(status, 401, "rotating HALLPASS_ADMIN_KEY ends its sessions");
}

async fn break_glass_reserves_the_username_and_cannot_rotate_in_the_app(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.env_auth = env(&[("HALLPASS_ADMIN_KEY", KEY)]),
        false,
    )
    .await
    else {
        return;
    };
    set_up(&app).await;
    let (owner, _) = sign_in(&app, "owner", "owner-password-1").await;
    for name in ["admin", "Admin"] {
        let token = app.csrf(&owner, "/admin/users/new").await;
        let r = owner
            .post(app.url("/admin/users"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", name),
                ("role", "user"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{name}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("reserved for the built-in break-glass admin")
        );
    }
    let (bg, _) = sign_in(&app, "admin", KEY).await;
    let token = app.csrf(&bg, "/account").await;
    let r = bg
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", KEY),
            ("new_password", "something-new-123"),
            ("new_password_confirm", "something-new-123"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.unwrap().contains("HALLPASS_ADMIN_KEY"));
    let r = bg
        .post(app.url("/api/me/api-keys"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "BREAK_GLASS_ACCOUNT");
    // Its actions are audited under its own name.
    assert!(
        sql(
            &app,
            "UPDATE audit_events SET id = id WHERE actor = 'admin (break-glass)'"
        )
        .await
            >= 1
    );
}
