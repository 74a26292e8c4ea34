//! Signing in with a password.

use std::time::{Duration, Instant};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, csrf_in, session_cookie, sql, user,
};

both_databases!(
    username_or_email_in_any_case,
    every_failure_looks_the_same,
    unknown_accounts_cost_a_hash_too,
    a_disabled_account_cannot_sign_in_and_loses_its_session,
    the_session_id_changes_at_login,
    next_only_goes_to_same_site_paths,
    anonymous_pages_redirect_and_api_answers_401,
    hashes_are_upgraded_when_parameters_change,
    a_login_storm_is_bounded_and_does_not_stall_other_requests,
    forms_help_password_managers,
);

async fn username_or_email_in_any_case(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    for login in ["admin", "ADMIN", "Admin@Example.COM"] {
        let c = app.client();
        let r = app.login(&c, login, ADMIN_PASSWORD).await;
        assert_eq!(r.status(), 303, "{login}");
        let me = c.get(app.url("/api/auth/me")).send().await.unwrap();
        assert_eq!(me.status(), 200, "{login}");
    }
    assert!(user(&app, ADMIN).await.last_login_at.is_some());
}

async fn every_failure_looks_the_same(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let wrong_password = app.login(&c, ADMIN, "not the password").await;
    assert_eq!(wrong_password.status(), 401);
    let wrong_password = wrong_password.text().await.unwrap();
    let unknown_user = app.login(&c, "nobody", "not the password").await;
    assert_eq!(unknown_user.status(), 401);
    let unknown_user = unknown_user.text().await.unwrap();
    let message = "id=\"login-error\">Invalid username or password.<";
    assert!(wrong_password.contains(message), "{wrong_password}");
    assert!(unknown_user.contains(message));
    // Same page apart from the echoed username and the CSRF token.
    let normalise = |s: &str, name: &str| {
        s.replace(&csrf_in(s).unwrap(), "T")
            .replace(&format!("value=\"{name}\""), "value=\"U\"")
    };
    assert_eq!(
        normalise(&wrong_password, ADMIN),
        normalise(&unknown_user, "nobody")
    );
    assert!(wrong_password.contains("value=\"admin\""), "username kept");
    assert!(
        !wrong_password.contains("not the password"),
        "password never echoed"
    );

    let api = app.client();
    for (u, p) in [(ADMIN, "not the password"), ("nobody", "whatever-123")] {
        let r = api
            .post(app.url("/api/auth/login"))
            .json(&serde_json::json!({"username": u, "password": p}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "INVALID_CREDENTIALS");
        assert_eq!(body["error"]["message"], "Invalid username or password.");
    }
}

async fn login_time(c: &reqwest::Client, app: &TestApp, username: &str) -> Duration {
    let start = Instant::now();
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": username, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    start.elapsed()
}

async fn unknown_accounts_cost_a_hash_too(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    // Interleaved, so that load from other tests hits both sides alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        known.push(login_time(&c, &app, ADMIN).await);
        unknown.push(login_time(&c, &app, "nobody-here").await);
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[3], unknown[3]);
    // Without the dummy hash an unknown account answers in about a millisecond, against
    // tens of milliseconds for an argon2 verification (a ratio of ~0.02).
    assert!(
        unknown * 10 >= known * 3,
        "unknown {unknown:?} vs known {known:?}"
    );
}

async fn a_disabled_account_cannot_sign_in_and_loses_its_session(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let signed_in = app.admin_client().await;
    assert_eq!(
        signed_in
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sql(
        &app,
        "UPDATE users SET status = 'disabled' WHERE username_key = 'admin'",
    )
    .await;
    assert_eq!(
        signed_in
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = app.login(&app.client(), ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Invalid username or password.")
    );
}

async fn the_session_id_changes_at_login(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    // A cookie planted before sign-in (session fixation): Hallpass must not adopt its id.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(
        &format!("hallpass_session={planted}; Path=/"),
        &app.url("/").parse().unwrap(),
    );
    let c = reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(
        session_cookie(&page).as_deref().filter(|v| !v.is_empty()),
        None,
        "the sign-in form starts no session (its CSRF token is signed, not stored)"
    );
    let token = csrf_in(&page.text().await.unwrap()).unwrap();
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let signed_in = session_cookie(&r).expect("a new cookie at login");
    assert_ne!(planted, signed_in);
    // The planted id is worthless afterwards (no session fixation).
    let stale = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header("Cookie", format!("hallpass_session={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
    let fresh = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header("Cookie", format!("hallpass_session={signed_in}"))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
}

async fn next_only_goes_to_same_site_paths(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    for (next, expected) in [
        ("/account", "/account"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
    ] {
        let c = app.client();
        let token = app
            .csrf(&c, &format!("/login?next={}", urlencode(next)))
            .await;
        let r = c
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], expected, "next={next}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn anonymous_pages_redirect_and_api_answers_401(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    for (path, location) in [
        ("/", "/login?next=%2F"),
        ("/account", "/login?next=%2Faccount"),
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], location);
    }
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    // The login page carries the destination through the form.
    let page = c
        .get(app.url("/login?next=%2Faccount"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"next\" value=\"/account\""));
}

async fn hashes_are_upgraded_when_parameters_change(db: Db) {
    let Some(app) = TestApp::start(db, |c| c.password.argon2_iterations = 1, true).await else {
        return;
    };
    let before = user(&app, ADMIN).await.password_hash.unwrap();
    assert!(before.contains("m=19456,t=1,p=1"), "{before}");
    let test_db = app.stop_keep_db().await;
    // Same database, default parameters (t=2): the next sign-in re-hashes.
    let app = TestApp::start_on(test_db, |_| {}, false).await;
    assert_eq!(
        app.login(&app.client(), ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        303
    );
    let after = user(&app, ADMIN).await.password_hash.unwrap();
    assert!(after.contains("m=19456,t=2,p=1"), "{after}");
    assert_ne!(before, after);
    let c = app.client();
    assert_eq!(
        app.login(&c, ADMIN, ADMIN_PASSWORD).await.status(),
        303,
        "still the same password"
    );
    assert_eq!(
        user(&app, ADMIN).await.password_hash.unwrap(),
        after,
        "no re-hash once current"
    );
}

async fn a_login_storm_is_bounded_and_does_not_stall_other_requests(db: Db) {
    // The hash pool is under test, not the brute-force limits (tests/http/rate_limit.rs):
    // 16 failures for one account would be refused from the 11th on.
    let Some(app) = TestApp::start(db, |c| c.auth.rate_limit.enabled = false, true).await else {
        return;
    };
    let cores = std::thread::available_parallelism().unwrap().get();
    let mut storm = Vec::new();
    for _ in 0..16 {
        let (c, url) = (app.client(), app.url("/api/auth/login"));
        storm.push(tokio::spawn(async move {
            c.post(url)
                .json(&serde_json::json!({"username": "admin", "password": "wrong password"}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let probe = app.client();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(
            probe
                .get(app.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        worst = worst.max(start.elapsed());
    }
    for t in storm {
        assert_eq!(t.await.unwrap(), 401);
    }
    let peak = app.state.hasher.peak_concurrency();
    assert!(
        peak >= 1 && peak <= cores,
        "peak {peak} hashes at once on {cores} cores"
    );
    assert!(
        worst < Duration::from_millis(250),
        "healthz took {worst:?} during the storm"
    );
    let _ = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
}

async fn forms_help_password_managers(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let login = app
        .client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("autocomplete=\"username\""));
    assert!(login.contains("autocomplete=\"current-password\""));
    let c = app.admin_client().await;
    let account = c
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains(
            "name=\"current_password\" type=\"password\" autocomplete=\"current-password\""
        )
    );
    assert!(
        account.contains("name=\"new_password\" type=\"password\" autocomplete=\"new-password\"")
    );
}
