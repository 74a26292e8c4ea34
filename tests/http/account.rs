//! The account page and self-service password change.

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, count_sessions, csrf_in, user,
};

both_databases!(
    the_account_page_shows_who_you_are,
    changing_the_password_ends_every_session,
    password_change_errors_keep_you_signed_in,
    a_viewer_manages_their_own_sign_in_but_their_key_is_read_only,
);

async fn the_account_page_shows_who_you_are(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let page = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("admin@example.com"));
    assert!(page.contains("badge-admin"));
    assert!(page.contains("name=\"current_password\""));
    assert!(!page.contains("$argon2"), "no hash in pages");
}

async fn changing_the_password_ends_every_session(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (a, b) = (app.admin_client().await, app.admin_client().await);
    let id = user(&app, ADMIN).await.id;
    assert_eq!(count_sessions(&app, Some(id)).await, 2);
    let token = app.csrf(&a, "/account").await;
    let r = a
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", ADMIN_PASSWORD),
            ("new_password", "a brand new passphrase"),
            ("new_password_confirm", "a brand new passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?notice=password_changed");
    let login = a
        .get(app.url("/login?notice=password_changed"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("Your password was changed, so every session was signed out"),
        "{login}"
    );
    // The current session ended too, and so did the other browser's.
    assert_eq!(
        a.get(app.url("/account")).send().await.unwrap().status(),
        303
    );
    assert_eq!(
        b.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(count_sessions(&app, Some(id)).await, 0);
    assert_eq!(
        app.login(&app.client(), ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        401,
        "old password"
    );
    assert_eq!(
        app.login(&app.client(), ADMIN, "a brand new passphrase")
            .await
            .status(),
        303,
        "new password"
    );
}

async fn password_change_errors_keep_you_signed_in(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/account").await;
    let r = c
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", "not my password"),
            ("new_password", "new-pass-1"),
            ("new_password_confirm", "new-pass-2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"current_password-error\">The current password is not correct."),
        "{page}"
    );
    assert!(page.contains("id=\"new_password_confirm-error\">The two passwords do not match."));
    for secret in ["not my password", "new-pass-1", "new-pass-2"] {
        assert!(!page.contains(secret), "{secret} echoed");
    }
    let token = csrf_in(&page).unwrap();
    let r = c
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", ADMIN_PASSWORD),
            ("new_password", "short"),
            ("new_password_confirm", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("id=\"new_password-error\">Password must be at least 8 characters long.")
    );
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still signed in"
    );
    assert_eq!(
        app.login(&app.client(), ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        303,
        "password unchanged"
    );
}

/// The rule (`domain::policy::may_write`) as the README states it: a viewer changes their own
/// password, API keys and linked identities from the browser; their API key is read-only.
async fn a_viewer_manages_their_own_sign_in_but_their_key_is_read_only(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (admin, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = admin
        .post(app.url("/api/admin/users"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"username": "vera", "role": "viewer", "password": "vera-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let vera = user(&app, "vera").await;
    app.state
        .db
        .run(move |c| {
            hallpass::db::identities::insert(
                c,
                &hallpass::db::identities::NewIdentity {
                    user_id: vera.id,
                    provider: "idp",
                    issuer: "https://idp.example",
                    subject: "vera-sub",
                    email: None,
                    display_name: None,
                },
            )
        })
        .await
        .unwrap();
    let link = app
        .state
        .db
        .run(move |c| hallpass::db::identities::for_user(c, vera.id))
        .await
        .unwrap()
        .pop()
        .unwrap();
    // From the browser: unlink her own identity (she keeps her password), new API key.
    let c = app.client();
    assert_eq!(app.login(&c, "vera", "vera-password-1").await.status(), 303);
    let path = format!("/account/identities/{}/unlink", link.id);
    let token = app.csrf(&c, &path).await;
    let r = c
        .post(app.url(&path))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account?notice=unlinked");
    let left = app
        .state
        .db
        .run(move |c| hallpass::db::identities::for_user(c, vera.id))
        .await
        .unwrap();
    assert!(left.is_empty());
    let token = app.csrf(&c, "/account").await;
    let page = c
        .post(app.url("/account/api-keys"))
        .form(&[("csrf_token", token.as_str()), ("name", "reader")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("hp_").expect("the new key is shown once");
    let key: String = page[at..]
        .chars()
        .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == '-')
        .collect();
    // Her key reads, and changes nothing — not even her own password or keys.
    let api = reqwest::Client::new();
    let r = api
        .get(app.url("/api/auth/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = api
        .post(app.url("/api/me/password"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"current_password": "vera-password-1", "new_password": "another-pass-1", "new_password_confirm": "another-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "WRITE_ACCESS_REQUIRED");
}
