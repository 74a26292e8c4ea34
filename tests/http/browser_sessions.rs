//! "Your sessions" and the lockout view in a real headless Chromium: ending a session and
//! lifting a lockout from the page (the pages use no script: every button is a plain form
//! POST; the browser runs with JavaScript only because the screenshots need it).
//! The SQLite run writes the `sessions` and `lockouts` screenshots (light and dark) of
//! `docs/screens.md`.

use reqwest::Client;
use serde_json::json;

use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, add_user, sql};

both_databases!(browser_sessions_and_lockouts);

fn limits(c: &mut hallpass::config::Config) {
    let r = &mut c.auth.rate_limit;
    r.max_failures_per_account = 3;
    r.max_failures_per_ip = 5;
}

/// Signs `name` in through the JSON API from `local` with `user_agent`.
async fn sign_in_elsewhere(app: &TestApp, name: &str, password: &str, local: &str, ua: &str) {
    let c = Client::builder()
        .cookie_store(true)
        .user_agent(ua)
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn fail_from(app: &TestApp, local: &str, name: &str, times: usize) {
    let c = crate::support::client_from(local);
    for _ in 0..times {
        c.post(app.url("/api/auth/login"))
            .json(&json!({ "username": name, "password": "wrong" }))
            .send()
            .await
            .unwrap();
    }
}

async fn browser_sessions_and_lockouts(db: Db) {
    let Some(app) = TestApp::start(db, limits, true).await else {
        return;
    };
    let options = Options::for_db(db);
    let Some(b) = Browser::start(&app, options).await else {
        return;
    };
    add_user(&app, "ann", "user").await;
    b.goto("/login?next=/account").await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/account").await;
    b.click("#your-sessions").await;
    b.wait_for_path("/account/sessions").await;
    assert!(b.exists("#current-session").await);

    let phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    let windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70";
    sign_in_elsewhere(&app, ADMIN, ADMIN_PASSWORD, "127.0.0.2", phone).await;
    sign_in_elsewhere(&app, ADMIN, ADMIN_PASSWORD, "127.0.0.3", windows).await;
    // Fixed times, so the screenshot is the same on every run.
    sql(
        &app,
        "UPDATE sessions SET signed_in_at = 1796117400 + 3600 * (CASE ip WHEN '127.0.0.1' THEN 3 \
         WHEN '127.0.0.2' THEN 2 ELSE 1 END), last_seen_at = 1796130000 + 60 * (CASE ip WHEN \
         '127.0.0.1' THEN 9 WHEN '127.0.0.2' THEN 5 ELSE 1 END) WHERE user_id IS NOT NULL",
    )
    .await;
    b.goto("/account/sessions").await;
    let devices = b
        .js("return Array.from(document.querySelectorAll('#sessions-table tbody tr td:first-child span[title]'), s => s.textContent);")
        .await;
    assert_eq!(
        devices,
        json!([
            "Headless Chrome on Linux",
            "Safari on iPhone",
            "Edge on Windows"
        ])
    );
    b.screenshot("sessions").await;

    // End the phone's session from the page: a plain POST, back with the notice.
    b.click("#sessions-table tbody tr:nth-child(2) button[id^='end-']")
        .await;
    b.wait_for_path("/account/sessions?notice=ended").await;
    assert_eq!(
        b.js("return document.querySelectorAll('#sessions-table tbody tr').length;")
            .await,
        json!(2)
    );
    b.click("#end-others").await;
    b.wait_for_path("/account/sessions?notice=others").await;
    assert_eq!(
        b.js("return document.querySelectorAll('#sessions-table tbody tr').length;")
            .await,
        json!(1)
    );

    // Lockouts: an account locked from one address, an address locked for every account.
    fail_from(&app, "127.0.0.4", "ann", 3).await;
    for name in ["root", "admin", "pi", "ubnt", "guest"] {
        fail_from(&app, "127.0.0.5", name, 1).await;
    }
    b.goto("/admin/lockouts").await;
    let rows = b
        .js("return Array.from(document.querySelectorAll('#lockouts-table tbody tr'), r => [r.cells[0].textContent, r.cells[1].textContent, r.cells[3].textContent]);")
        .await;
    let mut rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            vec![
                "(any account)".to_owned(),
                "127.0.0.5".into(),
                "5 / 5".into()
            ],
            vec!["ann".to_owned(), "127.0.0.4".into(), "3 / 3".into()],
        ]
    );
    // The window ends a quarter of an hour from now: a fixed text in the picture, so that
    // the screenshot is the same on every run (the rows were checked above).
    b.js("document.querySelectorAll('#lockouts-table tbody td:nth-child(5)').forEach(td => td.textContent = '2026-12-01 13:24:10 UTC'); return null;")
        .await;
    b.screenshot("lockouts").await;
    b.click("#lockouts-table tbody tr:first-child button[id^='lift-']")
        .await;
    b.wait_for_path("/admin/lockouts?notice=lifted").await;
    assert_eq!(
        b.js("return document.querySelectorAll('#lockouts-table tbody tr').length;")
            .await,
        json!(1)
    );
}
