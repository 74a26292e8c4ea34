//! Passkeys end to end in a real headless Chromium with its WebAuthn virtual authenticator
//! (the W3C WebDriver extension commands, through chromedriver): adding passkeys on
//! `/account/passkeys`, signing in with one alone and as the second step, and the checks the
//! server makes — user verification, the signature counter (a cloned authenticator), a
//! disabled account — and removing, but never the last way in. The SQLite run writes the
//! screenshots, light and dark.

use serde_json::{Value, json};

use crate::support::browser::{Browser, Options};
use crate::support::{Db, MEMBER_PASSWORD, TestApp, add_user, audit_events, free_port, sql, user};

both_databases!(browser_passkeys_end_to_end);

/// An instance whose `server.public_url` is `http://localhost:PORT`: browsers bind passkeys
/// to a domain name (never an IP address), and allow plain http for localhost only.
async fn app_on_localhost(db: Db) -> Option<TestApp> {
    let port = free_port();
    TestApp::start(
        db,
        |c| {
            c.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            c.server.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
        },
        true,
    )
    .await
}

/// A virtual platform authenticator that holds discoverable credentials and verifies its
/// user (as a phone's fingerprint would); returns its id.
pub(crate) async fn add_authenticator(b: &Browser) -> String {
    let id = b
        .webdriver(
            "POST",
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            })),
        )
        .await;
    id.as_str().unwrap().to_owned()
}

/// The credentials the authenticator holds (with their private keys and counters).
async fn credentials(b: &Browser, auth: &str) -> Vec<Value> {
    let creds = b
        .webdriver(
            "GET",
            &format!("/webauthn/authenticator/{auth}/credentials"),
            None,
        )
        .await;
    creds.as_array().unwrap().clone()
}

/// Replaces the authenticator's credentials with `cred` at signature counter `count`: a copy
/// of the key taken earlier, as a cloned authenticator would hold it.
async fn put_back(b: &Browser, auth: &str, cred: &Value, count: u64) {
    b.webdriver(
        "DELETE",
        &format!("/webauthn/authenticator/{auth}/credentials"),
        None,
    )
    .await;
    let mut cred = cred.clone();
    cred["signCount"] = json!(count);
    b.webdriver(
        "POST",
        &format!("/webauthn/authenticator/{auth}/credential"),
        Some(cred),
    )
    .await;
}

/// The signature counter the server stored for bob's passkey `name`.
async fn stored_counter(app: &TestApp, user_id: i64, name: &str) -> u64 {
    let rows = app
        .state
        .db
        .run(move |c| hallpass::db::passkeys::for_user(c, user_id))
        .await
        .unwrap();
    let row = rows.iter().find(|r| r.name == name).unwrap();
    let v: Value = serde_json::from_str(&row.passkey).unwrap();
    v["cred"]["counter"].as_u64().unwrap()
}

pub(crate) async fn sign_out(b: &Browser) {
    b.click("form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
}

async fn password_sign_in(b: &Browser, username: &str, password: &str) {
    b.goto("/login?next=/account").await;
    b.fill("#username", username).await;
    b.fill("#password", password).await;
    b.click("#password-form button[type=submit]").await;
}

/// Presses "Sign in with a passkey" and waits for the script to submit the answer.
pub(crate) async fn passkey_sign_in(b: &Browser) {
    b.goto("/login?next=/account").await;
    b.click("#passkey-sign-in").await;
}

/// Fixed dates in the list before a screenshot: the images must not change every run.
async fn fixed_dates(b: &Browser) {
    b.js("document.querySelectorAll('#passkeys-table tbody td:nth-child(2)').forEach(td => td.textContent = '2026-12-02 10:00'); \
          document.querySelectorAll('#passkeys-table tbody td:nth-child(3)').forEach((td, i) => td.textContent = i ? 'never' : '2026-12-02 10:05'); return null;")
        .await;
}

async fn add_passkey(b: &Browser, name: &str) {
    b.goto("/account/passkeys").await;
    b.fill("#passkey-name", name).await;
    b.click("#add-passkey").await;
    b.wait_for_path("/account/passkeys?notice=added").await;
}

async fn browser_passkeys_end_to_end(db: Db) {
    let Some(app) = app_on_localhost(db).await else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    let b = b.at_host("localhost");
    let bob = add_user(&app, "bob", "user").await;

    // Two passkeys on two authenticators ("several per account").
    let laptop = add_authenticator(&b).await;
    password_sign_in(&b, "bob", MEMBER_PASSWORD).await;
    b.wait_for_path("/account").await;
    b.click("#passkey-settings").await;
    b.wait_for_path("/account/passkeys").await;
    assert!(b.exists("#no-passkeys").await);
    add_passkey(&b, "Laptop").await;
    let held = credentials(&b, &laptop).await;
    assert_eq!(held.len(), 1);
    assert_eq!(
        held[0]["isResidentCredential"], true,
        "discoverable: it can sign in without a username"
    );
    let laptop_key = held[0].clone();
    b.webdriver("DELETE", &format!("/webauthn/authenticator/{laptop}"), None)
        .await;
    let phone = add_authenticator(&b).await;
    add_passkey(&b, "Phone").await;
    let names = b
        .js("return Array.from(document.querySelectorAll('#passkeys-table .passkey-name'), c => c.textContent);")
        .await;
    assert_eq!(names, json!(["Laptop", "Phone"]));
    assert_eq!(audit_events(&app, "passkey.add").await.len(), 2);
    fixed_dates(&b).await;
    b.screenshot("passkeys-account").await;

    // Renaming, and removing one while another way in remains.
    let ids: Vec<i64> = app
        .state
        .db
        .run(move |c| hallpass::db::passkeys::for_user(c, bob))
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    b.fill(&format!("#rename-{}", ids[1]), "Work phone").await;
    b.click(&format!(
        "#passkey-{} form[action$='/rename'] button",
        ids[1]
    ))
    .await;
    b.wait_for_path("/account/passkeys?notice=renamed").await;
    b.click(&format!("#remove-{}", ids[0])).await;
    b.wait_for_path("/account/passkeys?notice=removed").await;
    let names = b
        .js("return Array.from(document.querySelectorAll('#passkeys-table .passkey-name'), c => c.textContent);")
        .await;
    assert_eq!(names, json!(["Work phone"]));
    assert_eq!(b.text(".passkey-last-used").await, "never");
    sign_out(&b).await;

    // Signing in with the passkey alone: no username, no password.
    passkey_sign_in(&b).await;
    b.wait_for_path("/account").await;
    let signed_in = audit_events(&app, "login.passkey").await;
    assert_eq!(signed_in.len(), 1);
    assert_eq!(signed_in[0].outcome, "success");
    assert_eq!(signed_in[0].target.as_deref(), Some("bob"));
    assert!(user(&app, "bob").await.last_login_at.is_some());
    let counter = stored_counter(&app, bob, "Work phone").await;
    assert!(counter > 0, "the counter was stored: {counter}");
    b.goto("/account/passkeys").await;
    assert_ne!(b.text(".passkey-last-used").await, "never");
    sign_out(&b).await;
    b.goto("/login?next=/account").await;
    b.find("#passkey-sign-in").await;
    b.screenshot("passkeys-sign-in").await;

    // As the second step after a password: the passkey is offered, no code form (no app).
    password_sign_in(&b, "bob", MEMBER_PASSWORD).await;
    b.wait_for_path("/login/two-factor").await;
    assert!(
        !b.exists("#code-form").await,
        "no authenticator app: no code"
    );
    b.find("#passkey-verify").await;
    b.screenshot("passkeys-second-factor").await;
    b.click("#passkey-verify").await;
    b.wait_for_path("/account").await;
    let step = audit_events(&app, "login.second_factor").await;
    // Newest first.
    assert_eq!(step[0].detail.as_deref(), Some("passkey"));
    assert_eq!(step[0].outcome, "success");
    assert!(stored_counter(&app, bob, "Work phone").await > counter);
    sign_out(&b).await;

    // User verification: a browser made to skip it (the page's request altered, the
    // authenticator not verifying) gets a signed answer without the UV flag; the server
    // refuses it.
    b.webdriver(
        "POST",
        &format!("/webauthn/authenticator/{phone}/uv"),
        Some(json!({ "isUserVerified": false })),
    )
    .await;
    b.goto("/login?next=/account").await;
    b.find("#passkey-sign-in").await;
    b.js("const get = navigator.credentials.get.bind(navigator.credentials); \
          navigator.credentials.get = o => { o.publicKey.userVerification = 'discouraged'; return get(o); }; return null;")
        .await;
    b.click("#passkey-sign-in").await;
    b.find("#login-error").await;
    assert!(b.text("#login-error").await.contains("not accepted"));
    assert_eq!(b.path().await, "/login/passkey");
    b.webdriver(
        "POST",
        &format!("/webauthn/authenticator/{phone}/uv"),
        Some(json!({ "isUserVerified": true })),
    )
    .await;

    // The counter: a copy of the key whose counter is behind the stored one (a cloned
    // authenticator) is refused; the same key ahead of it signs in again.
    let phone_key = credentials(&b, &phone).await[0].clone();
    put_back(&b, &phone, &phone_key, 0).await;
    passkey_sign_in(&b).await;
    b.find("#login-error").await;
    assert_eq!(b.path().await, "/login/passkey");
    put_back(&b, &phone, &phone_key, 1000).await;
    passkey_sign_in(&b).await;
    b.wait_for_path("/account").await;
    sign_out(&b).await;

    // The removed laptop passkey is no way in any more.
    b.webdriver("DELETE", &format!("/webauthn/authenticator/{phone}"), None)
        .await;
    let laptop = add_authenticator(&b).await;
    put_back(&b, &laptop, &laptop_key, 1000).await;
    passkey_sign_in(&b).await;
    b.find("#login-error").await;
    b.webdriver("DELETE", &format!("/webauthn/authenticator/{laptop}"), None)
        .await;
    let phone = add_authenticator(&b).await;
    put_back(&b, &phone, &phone_key, 2000).await;

    // The last way in: without a password, bob's only passkey cannot be removed (the page
    // and the API both refuse).
    sql(
        &app,
        "UPDATE users SET password_hash = NULL WHERE username_key = 'bob'",
    )
    .await;
    passkey_sign_in(&b).await;
    b.wait_for_path("/account").await;
    b.goto("/account/passkeys").await;
    b.click(&format!("#remove-{}", ids[1])).await;
    b.find("#passkey-error").await;
    assert!(
        b.text("#passkey-error")
            .await
            .contains("last way to sign in")
    );
    assert_eq!(b.text(".passkey-name").await, "Work phone");
    let failures = audit_events(&app, "login.passkey")
        .await
        .iter()
        .filter(|e| e.outcome == "failure")
        .count();
    assert_eq!(failures, 3, "uv, counter, removed passkey");

    // A disabled account's passkey signs nobody in.
    sign_out(&b).await;
    sql(
        &app,
        "UPDATE users SET status = 'disabled' WHERE username_key = 'bob'",
    )
    .await;
    passkey_sign_in(&b).await;
    b.find("#login-error").await;
    assert_eq!(b.path().await, "/login/passkey");
    let events = audit_events(&app, "login.passkey").await;
    let last = &events[0];
    assert_eq!(
        (last.outcome.as_str(), last.target.as_deref()),
        ("failure", Some("bob"))
    );
}
