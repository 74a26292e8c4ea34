//! Brute-force limits (`auth.rate_limit`): every guarded endpoint answers `429` with
//! `Retry-After` once a limit is reached, and computes no password hash for it — proved with
//! the hasher's own counter. Small limits keep these fast; 127.0.0.2 is a second client.

use std::time::Duration;

use hallpass::config::{Config, HumanDuration};
use hallpass::domain::sso::{Policy, Provider, Source};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, audit_events, client_from, csrf_in, logs,
};

both_databases!(
    html_login_is_refused_before_hashing,
    json_login_shares_the_count_and_answers_rate_limited,
    limited_answers_are_the_same_for_unknown_accounts,
    the_account_limit_ignores_case,
    the_ip_limit_spans_accounts_but_not_other_ips,
    limits_follow_the_resolved_client_address,
    the_window_expires,
    success_clears_the_account_count_not_the_ip_failures,
    registration_is_limited,
    password_change_is_limited_in_html_and_json,
    bad_api_keys_are_limited_per_ip,
    a_busy_client_with_a_valid_key_is_never_limited,
    verify_and_link_starts_are_limited,
    refusals_are_audited_and_coalesced,
    config_keys_change_the_limits,
);

/// An app (with the admin) whose limits are `account` failures per account + IP and `ip` per
/// IP, in a window of `window` seconds.
async fn app_with(db: Db, account: u32, ip: u32, window: u64) -> Option<TestApp> {
    app_tweaked(db, account, ip, window, |_| {}).await
}

async fn app_tweaked(
    db: Db,
    account: u32,
    ip: u32,
    window: u64,
    tweak: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    TestApp::start(
        db,
        move |c| {
            let r = &mut c.auth.rate_limit;
            r.max_failures_per_account = account;
            r.max_failures_per_ip = ip;
            r.window = HumanDuration::secs(window);
            tweak(c);
        },
        true,
    )
    .await
}

fn hashes(app: &TestApp) -> u64 {
    app.state.hasher.hashes_computed()
}

/// `Retry-After` in seconds; fails the test when it is missing.
fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on a {} answer", r.status()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn json_login(
    app: &TestApp,
    c: &reqwest::Client,
    username: &str,
    password: &str,
) -> reqwest::Response {
    c.post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Checks a JSON `429` and returns its message.
async fn rate_limited_json(r: reqwest::Response, window: u64) -> String {
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=window).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("Too many failed attempts."),
        "{message}"
    );
    message
}

/// The text of the element with this id.
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()].to_owned()
}

async fn html_login_is_refused_before_hashing(db: Db) {
    let Some(app) = app_with(db, 3, 100, 900).await else {
        return;
    };
    let c = app.client();
    for _ in 0..3 {
        assert_eq!(app.login(&c, ADMIN, "wrong password").await.status(), 401);
    }
    let before = hashes(&app);
    // The right password no longer helps: the attempt is not even checked.
    let r = app.login(&c, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((890..=900).contains(&wait), "Retry-After {wait}");
    let html = r.text().await.unwrap();
    assert_eq!(hashes(&app), before, "a refused attempt costs no hash");
    assert_eq!(
        text_of(&html, "login-error"),
        "Too many failed attempts. Try again in 15 minutes."
    );
    assert!(
        html.contains(&format!("value=\"{ADMIN}\"")),
        "username kept"
    );
    assert!(!html.contains(ADMIN_PASSWORD), "never the password");
    assert!(
        html.contains("id=\"password-form\""),
        "the form is still there"
    );
}

async fn json_login_shares_the_count_and_answers_rate_limited(db: Db) {
    let Some(app) = app_with(db, 3, 100, 900).await else {
        return;
    };
    let c = app.client();
    // HTML and JSON failures count together.
    assert_eq!(app.login(&c, ADMIN, "wrong password").await.status(), 401);
    for _ in 0..2 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    let before = hashes(&app);
    let r = json_login(&app, &c, ADMIN, ADMIN_PASSWORD).await;
    rate_limited_json(r, 900).await;
    assert_eq!(app.login(&c, ADMIN, "wrong password").await.status(), 429);
    assert_eq!(hashes(&app), before);
}

async fn limited_answers_are_the_same_for_unknown_accounts(db: Db) {
    let Some(app) = app_with(db, 2, 100, 900).await else {
        return;
    };
    let c = app.client();
    for name in ["admin", "ghost"] {
        for _ in 0..2 {
            assert_eq!(json_login(&app, &c, name, "wrong").await.status(), 401);
        }
    }
    let known = json_login(&app, &c, "admin", "wrong").await;
    let unknown = json_login(&app, &c, "ghost", "wrong").await;
    assert_eq!(
        rate_limited_json(known, 900).await,
        rate_limited_json(unknown, 900).await
    );
    let known = app.login(&c, "admin", "wrong").await;
    let unknown = app.login(&c, "ghost", "wrong").await;
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (429, 429)
    );
    let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(
        text_of(&known, "login-error"),
        text_of(&unknown, "login-error")
    );
    // The pages differ only by the name typed in and the CSRF token.
    let scrub = |html: &str, name: &str| {
        html.replace(&csrf_in(html).unwrap(), "TOKEN")
            .replace(&format!("value=\"{name}\""), "value=\"NAME\"")
    };
    assert_eq!(scrub(&known, "admin"), scrub(&unknown, "ghost"));
}

async fn the_account_limit_ignores_case(db: Db) {
    let Some(app) = app_with(db, 3, 100, 900).await else {
        return;
    };
    let c = app.client();
    for name in ["admin", "ADMIN", " Admin "] {
        assert_eq!(json_login(&app, &c, name, "wrong").await.status(), 401);
    }
    rate_limited_json(json_login(&app, &c, "aDmIn", "wrong").await, 900).await;
    // Another account from the same address is not limited (the IP limit is far away).
    assert_eq!(json_login(&app, &c, "other", "wrong").await.status(), 401);
    // Nor is the same account from another address.
    let second = client_from("127.0.0.2");
    assert_eq!(
        json_login(&app, &second, "admin", "wrong").await.status(),
        401
    );
}

async fn the_ip_limit_spans_accounts_but_not_other_ips(db: Db) {
    let Some(app) = app_with(db, 10, 3, 900).await else {
        return;
    };
    let first = client_from("127.0.0.1");
    for name in ["u1", "u2", "u3"] {
        assert_eq!(json_login(&app, &first, name, "wrong").await.status(), 401);
    }
    let before = hashes(&app);
    rate_limited_json(json_login(&app, &first, "u4", "wrong").await, 900).await;
    rate_limited_json(json_login(&app, &first, ADMIN, ADMIN_PASSWORD).await, 900).await;
    assert_eq!(hashes(&app), before);
    // 127.0.0.2 has its own budget: it even signs in.
    let second = client_from("127.0.0.2");
    assert_eq!(json_login(&app, &second, "u4", "wrong").await.status(), 401);
    assert_eq!(
        json_login(&app, &second, ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        200
    );
}

async fn limits_follow_the_resolved_client_address(db: Db) {
    let Some(app) = app_tweaked(db, 10, 2, 900, |c| {
        c.server.trusted_proxies = "127.0.0.1".parse().unwrap();
    })
    .await
    else {
        return;
    };
    let login_as = |from: &'static str, xff: &'static str| {
        let app = &app;
        async move {
            client_from(from)
                .post(app.url("/api/auth/login"))
                .header("X-Forwarded-For", xff)
                .json(&serde_json::json!({ "username": xff, "password": "wrong" }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Behind the trusted proxy 127.0.0.1, each forwarded client has its own budget.
    assert_eq!(login_as("127.0.0.1", "203.0.113.1").await, 401);
    assert_eq!(login_as("127.0.0.1", "203.0.113.1").await, 401);
    assert_eq!(login_as("127.0.0.1", "203.0.113.1").await, 429);
    assert_eq!(login_as("127.0.0.1", "203.0.113.2").await, 401);
    // 127.0.0.2 is no proxy: inventing addresses does not buy it more attempts.
    assert_eq!(login_as("127.0.0.2", "198.51.100.1").await, 401);
    assert_eq!(login_as("127.0.0.2", "198.51.100.2").await, 401);
    assert_eq!(login_as("127.0.0.2", "198.51.100.3").await, 429);
}

async fn the_window_expires(db: Db) {
    let Some(app) = app_with(db, 2, 100, 2).await else {
        return;
    };
    let c = app.client();
    for _ in 0..2 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    rate_limited_json(json_login(&app, &c, ADMIN, ADMIN_PASSWORD).await, 2).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before = hashes(&app);
    assert_eq!(
        json_login(&app, &c, ADMIN, ADMIN_PASSWORD).await.status(),
        200
    );
    assert_eq!(
        hashes(&app),
        before + 1,
        "checked again once the window closed"
    );
}

async fn success_clears_the_account_count_not_the_ip_failures(db: Db) {
    let Some(app) = app_with(db, 3, 6, 900).await else {
        return;
    };
    let c = app.client();
    for _ in 0..2 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    assert_eq!(
        json_login(&app, &c, ADMIN, ADMIN_PASSWORD).await.status(),
        200
    );
    // The admin starts afresh: three more failures before the account limit…
    for _ in 0..3 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    rate_limited_json(json_login(&app, &c, ADMIN, "wrong").await, 900).await;
    // …while the address keeps all five failures: one more, for anybody, then the IP limit.
    assert_eq!(json_login(&app, &c, "other", "wrong").await.status(), 401);
    rate_limited_json(json_login(&app, &c, "third", "wrong").await, 900).await;
}

async fn registration_is_limited(db: Db) {
    let Some(app) = app_with(db, 2, 100, 900).await else {
        return;
    };
    let (admin, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = admin
        .put(app.url("/api/admin/settings"))
        .header("X-CSRF-Token", token)
        .json(
            &serde_json::json!({"registration_enabled": true, "auto_approve_registrations": false}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = app.client();
    let register = |username: &'static str| {
        let (app, c) = (&app, &c);
        async move {
            let token = app.csrf(c, "/register").await;
            c.post(app.url("/register"))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("username", username),
                    ("email", ""),
                    ("password", "a long enough password"),
                    ("password_confirm", "a long enough password"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // A taken username is found only after the new password was hashed: each probe costs.
    for _ in 0..2 {
        let before = hashes(&app);
        assert_eq!(register("admin").await.status(), 422);
        assert_eq!(hashes(&app), before + 1);
    }
    let before = hashes(&app);
    let r = register("ADMIN").await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) > 0);
    let html = r.text().await.unwrap();
    assert_eq!(hashes(&app), before);
    assert!(html.contains("Too many failed attempts."), "{html}");
    assert!(
        !html.contains("a long enough password"),
        "never the password"
    );
    // Another name is still welcome.
    assert_eq!(register("newcomer").await.status(), 303);
}

async fn password_change_is_limited_in_html_and_json(db: Db) {
    let Some(app) = app_with(db, 2, 100, 900).await else {
        return;
    };
    let (api, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let html_client = app.admin_client().await;
    let change_html = || async {
        let csrf = app.csrf(&html_client, "/account").await;
        html_client
            .post(app.url("/account/password"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("current_password", "not my password"),
                ("new_password", "brand new password"),
                ("new_password_confirm", "brand new password"),
            ])
            .send()
            .await
            .unwrap()
    };
    let change_json = |current: &'static str| {
        let (app, api, token) = (&app, &api, &token);
        async move {
            api.post(app.url("/api/me/password"))
                .header("X-CSRF-Token", token)
                .json(&serde_json::json!({"current_password": current, "new_password": "brand new password"}))
                .send()
                .await
                .unwrap()
        }
    };
    // A new password that breaks the rules is no guess at the current one: not counted.
    let r = api
        .post(app.url("/api/me/password"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"current_password": ADMIN_PASSWORD, "new_password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(change_html().await.status(), 422);
    assert_eq!(change_json("still wrong").await.status(), 422);
    let before = hashes(&app);
    rate_limited_json(change_json(ADMIN_PASSWORD).await, 900).await;
    let r = change_html().await;
    assert_eq!(r.status(), 429);
    assert!(retry_after(&r) > 0);
    let html = r.text().await.unwrap();
    assert_eq!(hashes(&app), before);
    assert!(
        text_of(&html, "current_password-error").starts_with("Too many failed attempts."),
        "{html}"
    );
    let events = audit_events(&app, "rate_limit.password_change").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, ADMIN, "the signed-in user is named");
}

async fn bad_api_keys_are_limited_per_ip(db: Db) {
    let Some(app) = app_with(db, 100, 2, 900).await else {
        return;
    };
    let bad = format!("hp_{}", "A".repeat(43));
    let me = |c: reqwest::Client, key: String| {
        let app = &app;
        async move {
            c.get(app.url("/api/auth/me"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let first = client_from("127.0.0.1");
    for key in [bad.clone(), "nonsense".to_owned()] {
        assert_eq!(me(first.clone(), key).await.status(), 401);
    }
    rate_limited_json(me(first.clone(), bad.clone()).await, 900).await;
    // Cookie requests from that address are not API-key attempts and carry on.
    let r = first.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(
        me(client_from("127.0.0.2"), bad.clone()).await.status(),
        401
    );
    let events = audit_events(&app, "rate_limit.api_key").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target, None, "a bad key names no account");
}

/// Issue 9, point 17: requests in flight are not failures. 64 connections hammer the API
/// with a valid key from 127.0.0.1 (six times the per-IP failure limit in flight at once)
/// while 127.0.0.2 sends bad keys at the same time: only the bad keys meet `429`.
async fn a_busy_client_with_a_valid_key_is_never_limited(db: Db) {
    const LIMIT: u32 = 10;
    const CONCURRENCY: usize = 64;
    const PER_WORKER: usize = 40;
    let Some(app) = app_with(db, 100, LIMIT, 900).await else {
        return;
    };
    let (c, csrf) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let created: serde_json::Value = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "name": "load" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let bad = format!("hp_{}", "B".repeat(43));
    let url = app.url("/api/auth/me");
    // Each worker sends its requests one after another; all run at once.
    let load = |from: &str, key: String, workers: usize, each: usize| {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .pool_max_idle_per_host(workers)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (client, key, url) = (client.clone(), key.clone(), url.clone());
                tokio::spawn(async move {
                    let mut statuses = Vec::with_capacity(each);
                    for _ in 0..each {
                        let r = client.get(&url).bearer_auth(&key).send().await.unwrap();
                        statuses.push(r.status().as_u16());
                    }
                    statuses
                })
            })
            .collect();
        async move {
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        }
    };
    let (good, bad_statuses) = tokio::join!(
        load("127.0.0.1", key.clone(), CONCURRENCY, PER_WORKER),
        load("127.0.0.2", bad.clone(), 8, 10),
    );
    let count = |v: &[u16], s: u16| v.iter().filter(|&&x| x == s).count();
    assert_eq!(good.len(), CONCURRENCY * PER_WORKER);
    assert_eq!(
        count(&good, 200),
        good.len(),
        "every valid-key request answered 200 ({} × 429)",
        count(&good, 429)
    );
    // Bad keys are counted when they fail, so a burst can overshoot the limit by at most the
    // requests already in flight; after that every one is refused.
    let unauthorized = count(&bad_statuses, 401);
    assert!(
        (LIMIT as usize..=LIMIT as usize + 8).contains(&unauthorized),
        "{unauthorized} × 401 for bad keys"
    );
    assert_eq!(unauthorized + count(&bad_statuses, 429), bad_statuses.len());
    let from_bad = client_from("127.0.0.2");
    let r = from_bad.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 429, "the address that guessed stays limited");
    // And the busy client is still welcome.
    let r = client_from("127.0.0.1")
        .get(&url)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn verify_and_link_starts_are_limited(db: Db) {
    logs::capture();
    // An unreachable issuer: each start that goes ahead tries it and logs the failure.
    let id = format!("rl-{}", format!("{db:?}").to_lowercase());
    let provider_id = id.clone();
    let Some(app) = app_tweaked(db, 2, 100, 900, move |c| {
        c.sso.providers.push(Provider {
            id: provider_id.clone(),
            label: "Nowhere".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "hallpass".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            subject_claim: "sub".into(),
            username_claim: "preferred_username".into(),
            email_claim: "email".into(),
            groups_claim: None,
            policy: Policy::Link,
            enabled: true,
            source: Source::Env,
        });
    })
    .await
    else {
        return;
    };
    let admin = app.admin_client().await;
    // Single sign-on on (password sign-in stays on), so the account page offers the link.
    let csrf = app.csrf(&admin, "/admin/sso").await;
    let r = admin
        .post(app.url("/admin/sso/modes"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("sso_enabled", "on"),
            ("local_login_enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let tried = || {
        logs::lines_with("cannot start OIDC sign-in")
            .into_iter()
            .filter(|l| l.contains(&format!("provider={id}")))
            .count()
    };
    let links = format!("/admin/sso/providers/{id}/links");
    let admin_start = || async {
        let csrf = app.csrf(&admin, &links).await;
        admin
            .post(app.url(&format!("/admin/sso/providers/{id}/verify")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    };
    let account_start = || async {
        let csrf = app.csrf(&admin, "/account").await;
        admin
            .post(app.url(&format!("/account/identities/{id}/link")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap()
    };
    // Both pages count together, per user and address.
    assert_eq!(admin_start().await.status(), 303);
    assert_eq!(account_start().await.status(), 303);
    assert_eq!(tried(), 2);
    for r in [admin_start().await, account_start().await] {
        assert_eq!(r.status(), 429);
        assert!(retry_after(&r) > 0);
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Too many failed attempts.")
        );
    }
    assert_eq!(tried(), 2, "refused starts never reach the provider");
}

async fn refusals_are_audited_and_coalesced(db: Db) {
    let Some(app) = app_with(db, 2, 100, 900).await else {
        return;
    };
    let c = app.client();
    for _ in 0..2 {
        assert_eq!(json_login(&app, &c, "Admin", "wrong").await.status(), 401);
    }
    for _ in 0..3 {
        assert_eq!(json_login(&app, &c, "admin", "wrong").await.status(), 429);
    }
    // The first refusal is written at once…
    let events = audit_events(&app, "rate_limit.login").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.actor.as_str(), e.target.as_deref(), e.ip.as_deref()),
        ("anonymous", Some("admin"), Some("127.0.0.1"))
    );
    assert_eq!(e.outcome, "refused");
    let detail = e.detail.clone().unwrap();
    assert!(
        detail.contains("limit=account (2 failures per 15m)"),
        "{detail}"
    );
    // …the rest by the next flush (every minute, and at shutdown), as one event.
    assert_eq!(app.state.limiter.flush().await, 1);
    let events = audit_events(&app, "rate_limit.login").await;
    assert_eq!(events.len(), 2);
    let detail = events[0].detail.clone().unwrap();
    assert!(detail.contains("refused=2 more"), "{detail}");
    assert_eq!(app.state.limiter.flush().await, 0, "nothing new to report");
    // The failures themselves are audited as before.
    assert_eq!(audit_events(&app, "login.password").await.len(), 2);
}

async fn config_keys_change_the_limits(db: Db) {
    // The defaults: 10 failures per account and IP.
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    for _ in 0..10 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    let r = json_login(&app, &c, ADMIN, "wrong").await;
    assert!(retry_after(&r) > 840, "a 15-minute window");
    rate_limited_json(r, 900).await;
    drop(app);
    // Switched off: nothing is ever refused.
    let Some(app) = app_tweaked(db, 1, 1, 900, |c| c.auth.rate_limit.enabled = false).await else {
        return;
    };
    for _ in 0..4 {
        assert_eq!(json_login(&app, &c, ADMIN, "wrong").await.status(), 401);
    }
    assert_eq!(
        json_login(&app, &c, ADMIN, ADMIN_PASSWORD).await.status(),
        200
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

#[test]
fn the_keys_load_from_the_environment_and_bad_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.current_dir(dir.path()).env_clear().arg("check-config");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[
        ("HALLPASS_AUTH__RATE_LIMIT__WINDOW", "2m"),
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT", "4"),
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_IP", "40"),
        ("HALLPASS_AUTH__RATE_LIMIT__ENABLED", "false"),
    ]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for line in [
        "enabled = false",
        "window = \"2m\"",
        "max_failures_per_account = 4",
        "max_failures_per_ip = 40",
    ] {
        assert!(shown.contains(line), "{line} in {shown}");
    }
    for (key, value) in [
        ("HALLPASS_AUTH__RATE_LIMIT__WINDOW", "0s"),
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_IP", "0"),
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT", "-3"),
    ] {
        let out = run(&[(key, value)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}={value}: {err}");
        let name = key
            .trim_start_matches("HALLPASS_")
            .replace("__", ".")
            .to_lowercase();
        assert!(err.contains(&name), "{key}={value}: {err}");
    }
}
