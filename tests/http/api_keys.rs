//! API keys: created on /account or through the API, shown once, stored as an HMAC only,
//! accepted as `Authorization: Bearer` on `/api/*` with the owner's role and status.

use hallpass::domain::Password;
use hallpass::service::Actor;
use hallpass::service::admin::{InitialPassword, Profile, create_user};
use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, csrf_in, sql, user};

both_databases!(
    a_key_created_on_the_account_page_is_shown_once,
    the_new_key_form_keeps_input_and_explains_errors,
    keys_through_the_api,
    a_bad_key_is_refused_without_falling_back_to_the_cookie,
    expired_keys_are_refused,
    a_disabled_owner_stops_their_keys,
    a_pending_owner_is_told_where_they_stand,
    a_viewers_key_is_read_only,
    someone_elses_key_is_not_found,
    admins_list_and_revoke_anyones_keys,
    revoking_on_the_account_page_asks_first,
    the_secret_file_is_private_and_survives_restarts,
    last_use_is_written_at_most_once_a_minute
);

/// The key shown on the creation page.
fn key_in(html: &str) -> Option<String> {
    let at = html.find("id=\"new-key\"")?;
    let rest = &html[at..];
    let start = rest.find("hp_")?;
    let key: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Some(key)
}

/// Creates a key through the account page; returns the creation response's status and body.
async fn create_on_page(
    app: &TestApp,
    c: &reqwest::Client,
    name: &str,
    days: &str,
) -> (u16, String, Option<String>) {
    let token = app.csrf(c, "/account").await;
    let r = c
        .post(app.url("/account/api-keys"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", name),
            ("expires_in_days", days),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.text().await.unwrap(), cache)
}

/// A key for `c`'s user, made on the account page.
async fn new_key(app: &TestApp, c: &reqwest::Client, name: &str) -> String {
    let (status, html, _) = create_on_page(app, c, name, "").await;
    assert_eq!(status, 200, "{html}");
    key_in(&html).unwrap()
}

/// `GET /api/auth/me` with a key; status and JSON body.
async fn me_with(app: &TestApp, key: &str) -> (u16, Value) {
    let r = app
        .client()
        .get(app.url("/api/auth/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Every stored `(prefix, key_hmac)`.
async fn stored(app: &TestApp) -> Vec<(String, String)> {
    use diesel::{QueryableByName, RunQueryDsl, sql_types};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::Text)]
        prefix: String,
        #[diesel(sql_type = sql_types::Text)]
        key_hmac: String,
    }
    app.state
        .db
        .run(|c| {
            diesel::sql_query("SELECT prefix, key_hmac FROM api_keys ORDER BY id")
                .load::<Row>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.prefix, r.key_hmac))
        .collect()
}

/// A second, signed-in account with `role`; returns its browser client.
async fn other_user(app: &TestApp, name: &str, role: &str) -> reqwest::Client {
    let profile = Profile::parse(name, "", "", role).unwrap();
    let password = Password::parse("another good password").unwrap();
    create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        profile,
        InitialPassword::Given(password),
    )
    .await
    .unwrap();
    let c = app.client();
    assert_eq!(
        app.login(&c, name, "another good password").await.status(),
        303
    );
    c
}

async fn a_key_created_on_the_account_page_is_shown_once(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let (status, html, cache) = create_on_page(&app, &c, "backup script", "").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert!(html.contains("it will not be shown again"), "{html}");
    let key = key_in(&html).unwrap();
    assert_eq!(key.len(), 46, "{key}");

    let account = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("backup script"), "{account}");
    assert!(account.contains(&format!("{}…", &key[..9])), "prefix shown");
    assert!(!account.contains(&key), "the key is shown only once");

    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    let (prefix, hmac) = &rows[0];
    assert_eq!(prefix, &key[..9]);
    assert_eq!(hmac.len(), 64);
    assert!(
        !hmac.contains(&key) && !prefix.contains(&key),
        "no cleartext key"
    );
    assert!(!account.contains(hmac.as_str()) && !html.contains(hmac.as_str()));

    let r = app
        .client()
        .get(app.url("/api/auth/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no session for keys"
    );
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["username"], ADMIN);
    assert_eq!(me["auth_method"], "api_key");
    assert!(me.get("csrf_token").is_none(), "{me}");
    let account = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!account.contains(&key) && !account.contains(hmac.as_str()));
}

async fn the_new_key_form_keeps_input_and_explains_errors(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let (status, html, _) = create_on_page(&app, &c, "   ", "soon").await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"name-error\""), "{html}");
    assert!(html.contains("id=\"expires_in_days-error\""), "{html}");
    assert!(html.contains("value=\"soon\""), "input kept: {html}");
    let (status, html, _) = create_on_page(&app, &c, "nightly sync", "0").await;
    assert_eq!(status, 422);
    assert!(html.contains("value=\"nightly sync\""), "input kept");
    assert!(html.contains("Expiry must be between 1 and 3650 days"));
    assert!(stored(&app).await.is_empty());
    assert!(csrf_in(&html).is_some(), "the form can be sent again");
}

async fn keys_through_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, csrf) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "ci", "expires_in_days": 30 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("hp_") && key.len() == 46, "{created}");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["prefix"], &key[..9]);
    assert!(created["expires_at"].is_string(), "{created}");
    assert!(created["last_used_at"].is_null());

    let r = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(e["error"]["fields"][0]["field"], "name");

    // A key needs no CSRF token: it is not a cookie.
    let r = app
        .client()
        .post(app.url("/api/me/api-keys"))
        .bearer_auth(&key)
        .json(&json!({ "name": "made by a script" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let second: Value = r.json().await.unwrap();

    let r = app
        .client()
        .get(app.url("/api/me/api-keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for (_, hmac) in stored(&app).await {
        assert!(!text.contains(&hmac), "no hash in answers");
    }
    assert!(!text.contains(&key), "no key in lists");
    let list: Value = serde_json::from_str(&text).unwrap();
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "ci");
    assert!(keys[0]["last_used_at"].is_string(), "use recorded: {list}");
    assert!(keys[0].get("key").is_none() && keys[0].get("key_hmac").is_none());

    // Revoking (with the key itself): 204, then the key is refused.
    let r = app
        .client()
        .delete(app.url(&format!("/api/me/api-keys/{}", created["id"])))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, body) = me_with(&app, &key).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "INVALID_API_KEY");
    assert_eq!(me_with(&app, second["key"].as_str().unwrap()).await.0, 200);
    let r = c
        .delete(app.url(&format!("/api/me/api-keys/{}", created["id"])))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "already gone");
}

async fn a_bad_key_is_refused_without_falling_back_to_the_cookie(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let real = new_key(&app, &c, "real").await;
    let mut forged = real.clone();
    forged.replace_range(10..11, if &real[10..11] == "A" { "B" } else { "A" });
    for bad in [forged.as_str(), "hp_short", "not-even-a-key"] {
        let r = c
            .get(app.url("/api/auth/me"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{bad}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "INVALID_API_KEY");
    }
    // The cookie alone still works; the header only counts on /api/*.
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app
        .client()
        .get(app.url("/account"))
        .bearer_auth(&real)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "pages need a session");
}

async fn expired_keys_are_refused(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let (status, html, _) = create_on_page(&app, &c, "short-lived", "1").await;
    assert_eq!(status, 200);
    let key = key_in(&html).unwrap();
    assert_eq!(me_with(&app, &key).await.0, 200);
    sql(&app, "UPDATE api_keys SET expires_at = 1000").await;
    let (status, body) = me_with(&app, &key).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "INVALID_API_KEY");
    let account = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("badge-disabled\">expired"), "{account}");
}

async fn a_disabled_owner_stops_their_keys(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = other_user(&app, "robot", "user").await;
    let key = new_key(&app, &c, "robot key").await;
    assert_eq!(me_with(&app, &key).await.0, 200);
    sql(
        &app,
        "UPDATE users SET status = 'disabled' WHERE username = 'robot'",
    )
    .await;
    let (status, body) = me_with(&app, &key).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "INVALID_API_KEY");
    sql(
        &app,
        "UPDATE users SET status = 'active' WHERE username = 'robot'",
    )
    .await;
    assert_eq!(me_with(&app, &key).await.0, 200, "enabled again");
}

async fn a_pending_owner_is_told_where_they_stand(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = other_user(&app, "newcomer", "user").await;
    let key = new_key(&app, &c, "early key").await;
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username = 'newcomer'",
    )
    .await;
    let (status, body) = me_with(&app, &key).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "ACCOUNT_PENDING");
    sql(
        &app,
        "UPDATE users SET status = 'rejected' WHERE username = 'newcomer'",
    )
    .await;
    let (status, body) = me_with(&app, &key).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "ACCOUNT_REJECTED");
}

async fn a_viewers_key_is_read_only(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = other_user(&app, "watcher", "viewer").await;
    let key = new_key(&app, &c, "dashboard").await;
    let (status, me) = me_with(&app, &key).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "viewer");
    let r = app
        .client()
        .get(app.url("/api/me/api-keys"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for r in [
        app.client()
            .post(app.url("/api/me/api-keys"))
            .bearer_auth(&key)
            .json(&json!({ "name": "more" })),
        app.client()
            .post(app.url("/api/auth/logout"))
            .bearer_auth(&key),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 403);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "WRITE_ACCESS_REQUIRED");
    }
    assert_eq!(stored(&app).await.len(), 1);
}

async fn someone_elses_key_is_not_found(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let other = other_user(&app, "alice", "user").await;
    let key = new_key(&app, &other, "alice's").await;
    let id = me_list_ids(&app, &key).await[0];
    let (admin, csrf) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    for path in [
        format!("/api/me/api-keys/{id}"),
        "/api/me/api-keys/x".to_owned(),
    ] {
        let r = admin
            .delete(app.url(&path))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
    let page = app.admin_client().await;
    let r = page
        .get(app.url(&format!("/account/api-keys/{id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let token = app.csrf(&page, "/account").await;
    let r = page
        .post(app.url(&format!("/account/api-keys/{id}/revoke")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(me_with(&app, &key).await.0, 200, "still alive");
}

async fn me_list_ids(app: &TestApp, key: &str) -> Vec<i64> {
    let list: Value = app
        .client()
        .get(app.url("/api/me/api-keys"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect()
}

async fn admins_list_and_revoke_anyones_keys(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let other = other_user(&app, "bob", "user").await;
    let bobs = new_key(&app, &other, "bob's").await;
    let bob = user(&app, "bob").await.id;
    let admin = app.admin_client().await;
    let admin_key = new_key(&app, &admin, "admin automation").await;

    // Not for users.
    let r = app
        .client()
        .get(app.url(&format!("/api/admin/users/{bob}/api-keys")))
        .bearer_auth(&bobs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = app
        .client()
        .get(app.url(&format!("/api/admin/users/{bob}/api-keys")))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let keys = list["api_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{list}");
    assert_eq!(keys[0]["name"], "bob's");
    assert_eq!(keys[0]["user_id"], bob);
    let r = app
        .client()
        .get(app.url("/api/admin/users/999999/api-keys"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let path = format!("/api/admin/api-keys/{}", keys[0]["id"]);
    let r = app
        .client()
        .delete(app.url(&path))
        .bearer_auth(&bobs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "bob cannot use the admin route");
    let r = app
        .client()
        .delete(app.url(&path))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(me_with(&app, &bobs).await.0, 401);
    let r = app
        .client()
        .delete(app.url(&path))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn revoking_on_the_account_page_asks_first(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let key = new_key(&app, &c, "old laptop").await;
    let id = me_list_ids(&app, &key).await[0];
    let account = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let stored_hmacs_before_revoke = stored(&app).await[0].1.clone();
    let confirm_path = format!("/account/api-keys/{id}/revoke");
    assert!(
        account.contains(&format!("href=\"{confirm_path}\"")),
        "{account}"
    );
    let confirm = c
        .get(app.url(&confirm_path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("old laptop") && confirm.contains("cannot be undone"));
    assert!(confirm.contains(&format!("action=\"{confirm_path}\"")));
    assert_eq!(me_with(&app, &key).await.0, 200, "asking revokes nothing");
    let token = csrf_in(&confirm).unwrap();
    let r = c
        .post(app.url(&confirm_path))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account?notice=key_revoked");
    assert_eq!(me_with(&app, &key).await.0, 401);
    let account = c
        .get(app.url("/account?notice=key_revoked"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("The API key was revoked"));
    assert!(account.contains("You have no API keys."));

    let events = app
        .state
        .db
        .run(|c| hallpass::db::audit::recent(c, 50))
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"api_key.create") && actions.contains(&"api_key.revoke"));
    let hmac = stored_hmacs_before_revoke;
    for e in &events {
        let text = format!(
            "{} {}",
            e.target.clone().unwrap_or_default(),
            e.detail.clone().unwrap_or_default()
        );
        assert!(
            !text.contains(&key) && !text.contains(&hmac),
            "no key or hash in the audit log: {text}"
        );
    }
}

async fn the_secret_file_is_private_and_survives_restarts(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let path = app.data_dir().join("secret.key");
    let secret = std::fs::read(&path).unwrap();
    assert_eq!(secret.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let c = app.admin_client().await;
    let key = new_key(&app, &c, "long-lived").await;
    let hmac = stored(&app).await[0].1.clone();
    for page in ["/account", "/api/auth/me"] {
        let body = c
            .get(app.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!body.contains(&hmac), "{page}");
    }

    let test_db = app.stop_keep_db().await;
    let app = TestApp::start_on(test_db, |_| {}, false).await;
    assert_eq!(
        std::fs::read(&path).unwrap(),
        secret,
        "the same secret is reused"
    );
    let (status, me) = me_with(&app, &key).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["auth_method"], "api_key");
}

#[test]
fn a_short_secret_key_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_SERVER__BIND", "127.0.0.1:0")
        .env("HALLPASS_SECRET_KEY", "too short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HALLPASS_SECRET_KEY must be at least 32 characters long"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too short"),
        "the value is not echoed: {stderr}"
    );
    assert!(!dir.path().join("data/secret.key").exists());
}

/// The stored `last_used_at` of the only key.
async fn last_used(app: &TestApp) -> Option<i64> {
    let key = app
        .state
        .db
        .run(|c| hallpass::db::api_keys::find(c, 1))
        .await;
    key.unwrap().and_then(|k| k.last_used_at)
}

async fn last_use_is_written_at_most_once_a_minute(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let key = new_key(&app, &c, "busy script").await;
    assert_eq!(last_used(&app).await, None);
    assert_eq!(me_with(&app, &key).await.0, 200);
    let first = last_used(&app).await.unwrap();
    assert!(first > 1_000_000_000);
    // Within the minute: no write. An older mark is replaced.
    let recent: &'static str =
        Box::leak(format!("UPDATE api_keys SET last_used_at = {}", first - 30).into_boxed_str());
    sql(&app, recent).await;
    assert_eq!(me_with(&app, &key).await.0, 200);
    assert_eq!(last_used(&app).await, Some(first - 30));
    sql(&app, "UPDATE api_keys SET last_used_at = 1000").await;
    assert_eq!(me_with(&app, &key).await.0, 200);
    assert!(last_used(&app).await.unwrap() >= first);
}
