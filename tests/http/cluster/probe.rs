//! The PostgreSQL change probe (`db::changes`): triggers notify on every write that can end
//! or narrow access, whoever writes it; bookkeeping writes notify nothing; a listener that
//! lost its connection answers `None` until it listens again, then a new stamp. The last
//! sign-in, bookkeeping for the caches of access, moves the listing stamp alone.

use std::time::{Duration, Instant};

use hallpass::db::changes::{Channel, LISTENER_NAME, Stamp};

use crate::support::{Db, TestApp, sql};

fn stamp(app: &TestApp, channel: Channel) -> Option<Stamp> {
    app.state
        .db
        .changes()
        .expect("a probe on PostgreSQL")
        .stamp_of(channel)
}

/// Waits (without a fixed sleep) until `done` holds, or fails after 10 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A fence: a notification sent after `write` committed has arrived, so any notification
/// of `write` has too (PostgreSQL delivers them in commit order).
async fn fence(app: &TestApp) {
    let before = stamp(app, Channel::Limits);
    sql(app, "NOTIFY hallpass_limits").await;
    until("the fence", || {
        let now = stamp(app, Channel::Limits);
        now.is_some() && now != before
    })
    .await;
}

async fn moves(app: &TestApp, write: &str) {
    let before = stamp(app, Channel::Changes);
    assert!(before.is_some(), "the listener is up");
    sql(app, write).await;
    until(write, || {
        let now = stamp(app, Channel::Changes);
        now.is_some() && now != before
    })
    .await;
}

async fn stays(app: &TestApp, write: &str) {
    let before = stamp(app, Channel::Changes);
    assert!(before.is_some(), "the listener is up");
    sql(app, write).await;
    fence(app).await;
    assert_eq!(stamp(app, Channel::Changes), before, "notified: {write}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_can_narrow_access_notify_and_bookkeeping_does_not() {
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    // Sign-in and use: nothing any cache depends on.
    for write in [
        "UPDATE settings SET id = 1",
        "UPDATE users SET last_login_at = 42, updated_at = 43",
        "INSERT INTO sessions (id, user_id, data, expires_at, created_at) \
         SELECT 'signed-in', id, '{}', 9999999999999, 0 FROM users",
        "UPDATE sessions SET expires_at = expires_at + 1000 WHERE id = 'signed-in'",
        // "Last seen", touched once a minute per session (service::sessions::Store).
        "UPDATE sessions SET last_seen_at = 5 WHERE id = 'signed-in'",
        "INSERT INTO sessions (id, user_id, data, expires_at, created_at) \
         VALUES ('anonymous', NULL, '{}', 9999999999999, 0)",
        "UPDATE sessions SET data = '{\"a\":1}' WHERE id = 'anonymous'",
        "DELETE FROM sessions WHERE id = 'anonymous'",
        "INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) \
         SELECT id, 'k', 'hp_x', 'hmac', 0 FROM users",
        "INSERT INTO identities (user_id, provider, issuer, subject, created_at) \
         SELECT id, 'proxy', 'proxy', 'sub', 0 FROM users",
        "UPDATE identities SET last_login_at = 7",
        "INSERT INTO audit_events (at, actor, action, outcome) VALUES (0, 'x', 'test', 'ok')",
        "INSERT INTO rate_limits VALUES ('login', '10.0.0.1', '', 0, 1)",
        // Invites: read from the database at every use, never cached (issue 15).
        "INSERT INTO invites (token_hmac, role, created_at, expires_at) \
         VALUES ('h', 'user', 0, 9999999999)",
        "UPDATE invites SET revoked_at = 1",
        "INSERT INTO invite_groups (invite_id, group_id) SELECT i.id, g.id FROM invites i, groups g",
        "DELETE FROM invites",
    ] {
        if write.starts_with("INSERT INTO api_keys") || write.starts_with("INSERT INTO identities")
        {
            moves(&app, write).await;
        } else {
            stays(&app, write).await;
        }
    }
    // Anything that can end or narrow access.
    for write in [
        "UPDATE users SET session_version = session_version + 1",
        "UPDATE users SET role = 'viewer', updated_at = 44",
        "UPDATE users SET password_hash = NULL",
        "UPDATE sessions SET expires_at = expires_at - 5000 WHERE id = 'signed-in'",
        "UPDATE sessions SET data = '{\"b\":2}' WHERE id = 'signed-in'",
        "DELETE FROM sessions WHERE id = 'signed-in'",
        "UPDATE api_keys SET last_used_at = 7",
        "UPDATE api_keys SET expires_at = 1",
        "DELETE FROM api_keys",
        "UPDATE identities SET subject = 'other'",
        "DELETE FROM identities",
        "UPDATE settings SET local_login_enabled = 1 - local_login_enabled",
        "UPDATE settings SET proxy_preset = 'authelia'",
        "INSERT INTO groups (name, name_key, created_at, updated_at) VALUES ('g', 'g', 0, 0)",
        "INSERT INTO group_members (group_id, user_id, created_at) \
         SELECT g.id, u.id, 0 FROM groups g, users u",
        "DELETE FROM group_members",
        "INSERT INTO apps (name, name_key, hosts, access, created_at, updated_at) \
         VALUES ('a', 'a', 'a.example', 'signed_in', 0, 0)",
        "INSERT INTO app_groups SELECT a.id, g.id FROM apps a, groups g",
        "INSERT INTO app_users SELECT a.id, u.id FROM apps a, users u",
        "DELETE FROM app_users",
        "DELETE FROM app_groups",
        "UPDATE apps SET access = 'restricted'",
        "DELETE FROM groups",
        "INSERT INTO oidc_providers (id, label, issuer, client_id, scopes, subject_claim, \
         username_claim, email_claim, policy, created_at, updated_at) VALUES ('p', 'P', \
         'https://idp.example', 'c', 'openid', 'sub', 'preferred_username', 'email', \
         'link', 0, 0)",
        "UPDATE oidc_providers SET enabled = 0",
        "DELETE FROM oidc_providers",
        "DELETE FROM apps",
        "UPDATE users SET status = 'disabled'",
    ] {
        moves(&app, write).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_sign_in_moves_the_listing_stamp_and_nothing_else() {
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    let db = &app.state.db;
    // Both stamps fence: whatever was committed before them is counted, no waiting needed.
    let (listing, changes) = (db.listing_stamp().await, db.change_stamp().await);
    assert!(matches!(listing, Some(Stamp::Listed(..))), "{listing:?}");
    sql(&app, "UPDATE users SET last_login_at = 42").await;
    let moved = db.listing_stamp().await;
    assert!(
        moved.is_some() && moved != listing,
        "the table shows the last sign-in"
    );
    assert_eq!(
        db.change_stamp().await,
        changes,
        "no cache of access depends on it"
    );
    // Written again unchanged, or only `updated_at`: nothing a listing shows.
    sql(&app, "UPDATE users SET last_login_at = 42, updated_at = 7").await;
    assert_eq!(db.listing_stamp().await, moved);
    // A change of access moves the listing stamp as well.
    sql(&app, "UPDATE users SET role = 'viewer'").await;
    let after = db.listing_stamp().await;
    assert!(after.is_some() && after != moved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_from_another_connection_moves_the_stamp() {
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    let before = stamp(&app, Channel::Changes);
    assert!(matches!(before, Some(Stamp::Notified(_))));
    assert_eq!(stamp(&app, Channel::Changes), before, "nothing happened");
    // Not through the server at all: any writer on the database is seen.
    let url = app.state.config.database.url.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::{Connection, RunQueryDsl};
        let mut other = diesel::PgConnection::establish(&url).unwrap();
        diesel::sql_query("NOTIFY hallpass_changes, 'psql'")
            .execute(&mut other)
            .unwrap();
    })
    .await
    .unwrap();
    until("the notification", || {
        let now = stamp(&app, Channel::Changes);
        now.is_some() && now != before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_answers_none_then_listens_again_with_a_new_stamp() {
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    let before = stamp(&app, Channel::Changes);
    assert!(before.is_some());
    let killed = sql(
        &app,
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = '{LISTENER_NAME}' AND datname = current_database()"
        ),
    )
    .await;
    assert_eq!(killed, 1, "one listener per process");
    until("the listener is seen down", || {
        stamp(&app, Channel::Changes).is_none()
    })
    .await;
    until("the listener is back", || {
        stamp(&app, Channel::Changes).is_some()
    })
    .await;
    let after = stamp(&app, Channel::Changes);
    assert_ne!(after, before, "what happened meanwhile is covered");
    // And it listens again.
    moves(
        &app,
        "UPDATE users SET session_version = session_version + 1",
    )
    .await;
}

/// Using a session or an API key writes nothing that notifies, so on PostgreSQL the caches
/// keyed by the stamp stay warm under steady use (one touch per key per minute aside).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_use_of_a_session_and_a_key_does_not_move_the_stamp() {
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    let (c, csrf) =
        crate::support::api_login(&app, crate::support::ADMIN, crate::support::ADMIN_PASSWORD)
            .await;
    let created: serde_json::Value = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "name": "ci", "expires_in_days": 30 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let by_key = || {
        reqwest::Client::new()
            .get(app.url("/api/auth/me"))
            .bearer_auth(&key)
    };
    // The first use records "last used" (once a minute): that one notifies.
    assert_eq!(by_key().send().await.unwrap().status(), 200);
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    fence(&app).await;
    let before = stamp(&app, Channel::Changes);
    for _ in 0..20 {
        assert_eq!(
            c.get(app.url("/api/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            c.get(app.url("/account")).send().await.unwrap().status(),
            200
        );
        assert_eq!(by_key().send().await.unwrap().status(), 200);
    }
    fence(&app).await;
    assert_eq!(stamp(&app, Channel::Changes), before);
}
