//! Sessions and API keys are served from caches (`service::sessions::Store`,
//! `service::api_keys::KeyCache`) that are valid only while the database's change stamp
//! stays. Every change that ends or narrows access must still take effect on the very next
//! request: each case below warms the caches first (so a stale entry would be served), makes
//! the change, and asks again at once — through the service, and by a raw write no cache
//! knows about (what the recovery CLI or another process does).

use reqwest::{Client, StatusCode};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, add_user, api_login, session_cookie, sql,
};

both_databases!(
    cached_sessions_end_at_the_next_request,
    cached_api_keys_end_at_the_next_request
);

const PASSWORD: &str = crate::support::MEMBER_PASSWORD;

/// `GET path` with the client's cookie (and `Authorization` if given), three times: the
/// first fills the caches, the others are served from them. Returns the last status.
async fn warm(app: &TestApp, c: &Client, path: &str, bearer: Option<&str>) -> StatusCode {
    let mut last = StatusCode::IM_A_TEAPOT;
    for _ in 0..3 {
        last = get(app, c, path, bearer).await;
    }
    last
}

async fn get(app: &TestApp, c: &Client, path: &str, bearer: Option<&str>) -> StatusCode {
    let mut r = c.get(app.url(path));
    if let Some(key) = bearer {
        r = r.bearer_auth(key);
    }
    r.send().await.unwrap().status()
}

/// A fresh user signed in through the JSON API: (id, client with the cookie, CSRF token).
async fn signed_in(app: &TestApp, name: &str, role: &str) -> (i64, Client, String) {
    let id = add_user(app, name, role).await;
    let (c, token) = api_login(app, name, PASSWORD).await;
    assert_eq!(
        warm(app, &c, "/api/auth/me", None).await,
        200,
        "{name} is signed in"
    );
    (id, c, token)
}

async fn admin(app: &TestApp) -> (Client, String) {
    api_login(app, ADMIN, ADMIN_PASSWORD).await
}

async fn cached_sessions_end_at_the_next_request(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (admin, admin_token) = admin(&app).await;
    let me = "/api/auth/me";

    // The person changes their own password: every session ends (this one too, by design).
    let (_, c, token) = signed_in(&app, "ann", "user").await;
    let (other, _) = api_login(&app, "ann", PASSWORD).await;
    assert_eq!(warm(&app, &other, me, None).await, 200);
    let r = c
        .post(app.url("/api/me/password"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(get(&app, &other, me, None).await, 401, "password changed");

    // An admin resets the password.
    let (id, c, _) = signed_in(&app, "bob", "user").await;
    let r = admin
        .post(app.url(&format!("/api/admin/users/{id}/password")))
        .header("X-CSRF-Token", &admin_token)
        .json(&serde_json::json!({"password": "an admin-chosen password"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(get(&app, &c, me, None).await, 401, "password reset");

    // Disabled, then deleted.
    let (id, c, _) = signed_in(&app, "cat", "user").await;
    let r = admin
        .post(app.url(&format!("/api/admin/users/{id}/disable")))
        .header("X-CSRF-Token", &admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(get(&app, &c, me, None).await, 401, "disabled");
    let (id, c, _) = signed_in(&app, "dan", "user").await;
    let r = admin
        .delete(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    assert_eq!(get(&app, &c, me, None).await, 401, "deleted");

    // Role: an admin demoted to user loses the admin screens at once.
    let (id, c, _) = signed_in(&app, "eve", "admin").await;
    assert_eq!(warm(&app, &c, "/api/admin/users", None).await, 200);
    let r = admin
        .patch(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &admin_token)
        .json(&serde_json::json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(
        get(&app, &c, "/api/admin/users", None).await,
        403,
        "demoted"
    );
    assert_eq!(
        get(&app, &c, me, None).await,
        200,
        "still signed in, as a user"
    );

    // Sign-out: the same cookie, replayed, is nobody.
    add_user(&app, "fay", "user").await;
    let c = app.client();
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": "fay", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&r).unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let token = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(warm(&app, &c, me, None).await, 200);
    let r = c
        .post(app.url("/api/auth/logout"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let replay = app
        .client()
        .get(app.url(me))
        .header("Cookie", format!("hallpass_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "signed out");

    // Writes no cache is told about: another process, the recovery CLI, an operator's SQL.
    let (id, c, _) = signed_in(&app, "gus", "user").await;
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled' WHERE id = {id}"),
    )
    .await;
    assert_eq!(get(&app, &c, me, None).await, 401, "disabled by SQL");
    let (id, c, _) = signed_in(&app, "hal", "user").await;
    sql(&app, format!("DELETE FROM sessions WHERE user_id = {id}")).await;
    assert_eq!(get(&app, &c, me, None).await, 401, "session revoked by SQL");
    let (id, c, _) = signed_in(&app, "ivy", "admin").await;
    assert_eq!(warm(&app, &c, "/api/admin/users", None).await, 200);
    sql(
        &app,
        format!("UPDATE users SET role = 'viewer' WHERE id = {id}"),
    )
    .await;
    assert_eq!(
        get(&app, &c, "/api/admin/users", None).await,
        403,
        "demoted by SQL"
    );
}

async fn cached_api_keys_end_at_the_next_request(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (admin, admin_token) = admin(&app).await;
    let me = "/api/auth/me";
    let anon = app.client();

    let new_key = |c: Client, token: String| {
        let app = &app;
        async move {
            let r = c
                .post(app.url("/api/me/api-keys"))
                .header("X-CSRF-Token", &token)
                .json(&serde_json::json!({"name": "script"}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            let body: serde_json::Value = r.json().await.unwrap();
            (
                body["key"].as_str().unwrap().to_owned(),
                body["id"].as_i64().unwrap(),
            )
        }
    };

    // Revoked by its owner.
    let (_, c, token) = signed_in(&app, "ann", "user").await;
    let (key, key_id) = new_key(c.clone(), token.clone()).await;
    assert_eq!(warm(&app, &anon, me, Some(&key)).await, 200);
    let r = c
        .delete(app.url(&format!("/api/me/api-keys/{key_id}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&app, &anon, me, Some(&key)).await, 401, "revoked");

    // The owner disabled, deleted, demoted.
    let (id, c, token) = signed_in(&app, "bob", "user").await;
    let (key, _) = new_key(c, token).await;
    assert_eq!(warm(&app, &anon, me, Some(&key)).await, 200);
    let r = admin
        .post(app.url(&format!("/api/admin/users/{id}/disable")))
        .header("X-CSRF-Token", &admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        get(&app, &anon, me, Some(&key)).await,
        401,
        "owner disabled"
    );

    let (id, c, token) = signed_in(&app, "cat", "user").await;
    let (key, _) = new_key(c, token).await;
    assert_eq!(warm(&app, &anon, me, Some(&key)).await, 200);
    let r = admin
        .delete(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &admin_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&app, &anon, me, Some(&key)).await, 401, "owner deleted");

    let (id, c, token) = signed_in(&app, "dan", "admin").await;
    let (key, _) = new_key(c, token).await;
    assert_eq!(warm(&app, &anon, "/api/admin/users", Some(&key)).await, 200);
    let r = admin
        .patch(app.url(&format!("/api/admin/users/{id}")))
        .header("X-CSRF-Token", &admin_token)
        .json(&serde_json::json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&app, &anon, "/api/admin/users", Some(&key)).await,
        403,
        "owner demoted"
    );

    // Writes no cache is told about.
    let (_, c, token) = signed_in(&app, "eve", "user").await;
    let (key, key_id) = new_key(c, token).await;
    assert_eq!(warm(&app, &anon, me, Some(&key)).await, 200);
    sql(
        &app,
        format!("UPDATE api_keys SET expires_at = 1 WHERE id = {key_id}"),
    )
    .await;
    assert_eq!(
        get(&app, &anon, me, Some(&key)).await,
        401,
        "expired by SQL"
    );
    let (_, c, token) = signed_in(&app, "fay", "user").await;
    let (key, key_id) = new_key(c, token).await;
    assert_eq!(warm(&app, &anon, me, Some(&key)).await, 200);
    sql(&app, format!("DELETE FROM api_keys WHERE id = {key_id}")).await;
    assert_eq!(
        get(&app, &anon, me, Some(&key)).await,
        401,
        "deleted by SQL"
    );
}
