//! Session cookies, lifetimes, logout and the per-request version check.

use std::time::Duration;

use hallpass::config::{HumanDuration, PublicUrl};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, count_sessions, session_cookie, session_rows,
    set_cookie_header, sql, user,
};

both_databases!(
    the_cookie_is_httponly_lax_and_secure_behind_https,
    logout_is_post_only_and_deletes_the_row,
    bumping_the_version_ends_every_session,
    the_idle_timeout_slides_with_use,
    the_absolute_lifetime_is_enforced,
    expired_rows_are_purged_in_the_background,
);

async fn the_cookie_is_httponly_lax_and_secure_behind_https(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let r = app.login(&app.client(), ADMIN, ADMIN_PASSWORD).await;
    let cookie = set_cookie_header(&r).unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http setup: {cookie}");
    drop(app);

    let Some(app) = TestApp::start(
        db,
        |c| c.server.public_url = Some("https://auth.example.com".parse::<PublicUrl>().unwrap()),
        true,
    )
    .await
    else {
        return;
    };
    let r = app.login(&app.client(), ADMIN, ADMIN_PASSWORD).await;
    let cookie = set_cookie_header(&r).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");

    let Some(app) = TestApp::start(
        db,
        |c| c.session.cookie_secure = hallpass::config::CookieSecure::Always,
        true,
    )
    .await
    else {
        return;
    };
    let cookie = set_cookie_header(&app.login(&app.client(), ADMIN, ADMIN_PASSWORD).await).unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn logout_is_post_only_and_deletes_the_row(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let r = app.login(&c, ADMIN, ADMIN_PASSWORD).await;
    let cookie = session_cookie(&r).unwrap();
    let admin = user(&app, ADMIN).await;
    assert_eq!(count_sessions(&app, Some(admin.id)).await, 1);

    assert_eq!(
        c.get(app.url("/logout")).send().await.unwrap().status(),
        405
    );
    let token = app.csrf(&c, "/account").await;
    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?notice=signed_out");
    assert_eq!(
        count_sessions(&app, Some(admin.id)).await,
        0,
        "server-side row deleted"
    );
    let replay = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header("Cookie", format!("hallpass_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "a copied cookie is dead after logout");
    let notice = c
        .get(app.url("/login?notice=signed_out"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("You are signed out."));
}

async fn bumping_the_version_ends_every_session(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (a, b) = (app.admin_client().await, app.admin_client().await);
    for c in [&a, &b] {
        assert_eq!(
            c.get(app.url("/api/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    sql(
        &app,
        "UPDATE users SET session_version = session_version + 1",
    )
    .await;
    for c in [&a, &b] {
        assert_eq!(
            c.get(app.url("/api/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
        let r = c.get(app.url("/account")).send().await.unwrap();
        assert_eq!(r.status(), 303);
    }
}

async fn the_idle_timeout_slides_with_use(db: Db) {
    // Cookie `Expires` has whole-second precision, so the steps leave a second of slack.
    let Some(app) = TestApp::start(
        db,
        |c| c.session.idle_timeout = HumanDuration::secs(4),
        true,
    )
    .await
    else {
        return;
    };
    let c = app.admin_client().await;
    let me = || async {
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(me().await, 200);
    // That request re-saved the session; the user row it was loaded with is not stored.
    let rows = session_rows(&app).await;
    assert!(!rows.is_empty());
    for data in rows {
        assert!(
            !data.contains("__user") && !data.contains("argon2"),
            "{data}"
        );
    }
    // 4.5 s after sign-in: alive only because the request at 2 s moved the expiry forward.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(me().await, 200);
    tokio::time::sleep(Duration::from_millis(5000)).await;
    assert_eq!(me().await, 401, "idle for longer than the timeout");
}

async fn the_absolute_lifetime_is_enforced(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.session.idle_timeout = HumanDuration::secs(3600);
            c.session.max_lifetime = HumanDuration::secs(3);
        },
        true,
    )
    .await
    else {
        return;
    };
    let c = app.admin_client().await;
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            c.get(app.url("/api/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "busy or not, 3 s is the limit"
    );
}

async fn expired_rows_are_purged_in_the_background(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.session.idle_timeout = HumanDuration::secs(1);
            c.session.purge_interval = HumanDuration::secs(1);
        },
        true,
    )
    .await
    else {
        return;
    };
    let _c = app.admin_client().await;
    assert!(count_sessions(&app, None).await >= 1);
    // Nothing touches the session now; only the purge task can remove it.
    let mut left = i64::MAX;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = count_sessions(&app, Some(user(&app, ADMIN).await.id)).await;
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "expired session rows stay in the table");
}
