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
    anonymous_pages_write_no_session_rows,
    a_stale_or_malformed_cookie_is_anonymous_and_quiet,
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
            c.session.max_lifetime = HumanDuration::secs(5);
        },
        true,
    )
    .await
    else {
        return;
    };
    let c = app.admin_client().await;
    // The session's sign-in time is before this instant: the deadlines below are measured
    // from here, not assumed from the sleeps (a loaded machine makes the sign-in slow).
    let signed_in = std::time::Instant::now();
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
    // Past the 5 s lifetime, however long the requests above took.
    tokio::time::sleep(Duration::from_millis(5500).saturating_sub(signed_in.elapsed())).await;
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "busy or not, 5 s is the limit"
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

async fn anonymous_pages_write_no_session_rows(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    sql(&app, "UPDATE settings SET registration_enabled = 1").await;
    let before = count_sessions(&app, None).await;
    // 1,000 cookie-less page views, as a crawler (or a disk-filling script) makes them.
    let pages = [
        "/login",
        "/register",
        "/setup",
        "/no-such-page",
        "/login?sso_error=failed",
    ];
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let url = app.url("");
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut statuses = Vec::new();
            for i in 0..125 {
                let path = pages[(worker + i) % pages.len()];
                let r = c.get(format!("{url}{path}")).send().await.unwrap();
                assert!(session_cookie(&r).is_none(), "{path}: no session cookie");
                statuses.push(r.status().as_u16());
            }
            statuses
        }));
    }
    let mut answered = 0;
    for t in tasks {
        for status in t.await.unwrap() {
            assert!(status < 500, "{status}");
            answered += 1;
        }
    }
    assert_eq!(answered, 1000);
    assert_eq!(count_sessions(&app, None).await, before, "no rows written");

    // The forms on those pages still work: their token is signed, not stored.
    let c = app.client();
    let page = c.get(app.url("/login")).send().await.unwrap();
    let nonce = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hallpass_csrf="))
        .map(str::to_owned)
        .expect("the signed token's nonce cookie");
    assert!(
        nonce.contains("HttpOnly") && nonce.contains("SameSite=Lax"),
        "{nonce}"
    );
    let token = crate::support::csrf_in(&page.text().await.unwrap()).unwrap();
    let wrong = c
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        401,
        "a wrong password writes nothing either"
    );
    assert_eq!(count_sessions(&app, None).await, before);
    // A token from another browser (another nonce) is refused.
    let other = app.client();
    other.get(app.url("/login")).send().await.unwrap();
    let r = other
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = app.login(&c, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        count_sessions(&app, None).await,
        before + 1,
        "signing in writes one"
    );
}

async fn a_stale_or_malformed_cookie_is_anonymous_and_quiet(db: Db) {
    crate::support::logs::capture();
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let cookies = [
        // Well-formed, but no such session (purged, expired, or made up).
        "AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "garbage".to_owned(),
        "%00%ff".to_owned(),
        "x".repeat(3000),
        String::new(),
    ];
    // An instance still in setup mode answers as if there were no cookie.
    for cookie in &cookies {
        let r = reqwest::Client::new()
            .get(app.url("/setup"))
            .header("Cookie", format!("hallpass_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "setup page with cookie {cookie:.20}");
    }
    let code = app.state.setup.code().unwrap();
    let c = app.client();
    let token = app.csrf(&c, "/setup").await;
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", code.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    for cookie in &cookies {
        for _ in 0..50 {
            let r = reqwest::Client::new()
                .get(app.url("/api/auth/me"))
                .header("Cookie", format!("hallpass_session={cookie}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "cookie {cookie:.20}");
        }
        let r = reqwest::Client::new()
            .get(app.url("/login"))
            .header("Cookie", format!("hallpass_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // (A value the cookie parser cannot decode, such as `%00%ff`, is no cookie at all.)
        if !cookie.is_empty() && !cookie.contains('%') {
            let cleared = set_cookie_header(&r).unwrap_or_default();
            assert!(
                cleared.starts_with("hallpass_session=;") && cleared.contains("Max-Age=0"),
                "the stale cookie is cleared: {cleared}"
            );
        }
    }
    for needle in [
        "possibly suspicious activity",
        "cannot resolve the session",
        "ERROR",
    ] {
        let lines = crate::support::logs::lines_with(needle);
        assert!(lines.is_empty(), "{needle}: {lines:?}");
    }
}
