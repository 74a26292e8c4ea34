//! The pages in a real headless Chromium, driven like a person would: typing, clicking,
//! following redirects, with JavaScript on (and once off). The SQLite variant of each test
//! also writes the screenshots of `docs/screens.md` (see `support::browser`).

use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql};

both_databases!(
    browser_setup_wizard,
    browser_sign_in_returns_to_the_page_asked_for,
    browser_sign_out_from_the_header,
    browser_password_change_ends_the_session,
    browser_sign_in_without_javascript,
);

/// An app and a browser on it; `None` = skip (no PostgreSQL or no Chromium here).
async fn start(app: Option<TestApp>, options: Options) -> Option<(TestApp, Browser)> {
    let app = app?;
    let browser = Browser::start(&app, options).await?;
    Some((app, browser))
}

/// htmx ran and the stylesheet applied: both are external files that the strict
/// Content-Security-Policy must let through (an inline script or style would be blocked).
async fn assert_assets_loaded_under_csp(b: &Browser) {
    let loaded = b
        .js("return {
                script: document.querySelector('script[src*=htmx]') !== null,
                htmx: typeof htmx !== 'undefined' && typeof htmx.version === 'string',
                styled: getComputedStyle(document.querySelector('.btn')).borderRadius !== '0px',
            };")
        .await;
    assert_eq!(
        loaded,
        serde_json::json!({"script": true, "htmx": true, "styled": true}),
        "htmx or the stylesheet did not load (CSP?) on {}",
        b.path().await
    );
}

/// Signs in through the form on `/login` (the browser must be on it).
async fn sign_in(b: &Browser, username: &str, password: &str) {
    b.fill("#username", username).await;
    b.fill("#password", password).await;
    b.click("form[action='/login'] button[type=submit]").await;
}

async fn browser_setup_wizard(db: Db) {
    let Some((_app, b)) = start(TestApp::empty(db).await, Options::for_db(db)).await else {
        return;
    };
    // Whatever page someone opens first, an empty instance sends them to the wizard.
    b.goto("/").await;
    b.wait_for_path("/setup").await;
    assert_eq!(b.text("h1").await, "Set up Hallpass");
    assert!(
        !b.exists("#setup_code").await,
        "no setup code from this machine"
    );
    assert_assets_loaded_under_csp(&b).await;
    b.screenshot("setup").await;

    // A too-short password: the error sits next to the password field, the username stays.
    b.fill("#username", "alice").await;
    b.fill("#email", "alice@example.com").await;
    b.fill("#password", "short").await;
    b.fill("#password_confirm", "short").await;
    b.click("button[type=submit]").await;
    // The error is in the password field's own block, and the input points to it.
    let error = b.text(".field:has(> #password) > #password-error").await;
    assert_eq!(error, "Password must be at least 8 characters long.");
    let input = b.find("#password").await;
    assert_eq!(
        input.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(
        input.attr("aria-describedby").await.unwrap().as_deref(),
        Some("password-error")
    );
    assert_eq!(b.path().await, "/setup");
    assert_eq!(b.value("#username").await, "alice", "username kept");
    assert_eq!(b.value("#email").await, "alice@example.com", "email kept");
    assert_eq!(b.value("#password").await, "", "passwords are never echoed");
    assert!(!b.exists("#username-error").await);
    b.screenshot("setup-error").await;

    // Corrected: the admin exists and is signed in on the home page.
    b.fill("#password", "a long enough passphrase").await;
    b.fill("#password_confirm", "a long enough passphrase")
        .await;
    b.click("button[type=submit]").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("#me-username").await, "alice");
    assert_eq!(b.text("#me-role").await, "admin");
    assert_eq!(b.text(".nav a[href='/account']").await, "alice");
    b.screenshot("home").await;

    // The wizard is closed for good.
    b.goto("/setup").await;
    assert!(b.text("#setup-done").await.contains("already exists"));
    assert!(!b.exists("#password").await);
}

async fn browser_sign_in_returns_to_the_page_asked_for(db: Db) {
    let Some((app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    b.goto("/account").await;
    b.wait_for_path("/login?next=%2Faccount").await;
    assert_eq!(b.text("h1").await, "Sign in");
    assert!(!b.exists(".topbar .nav").await, "anonymous: no navigation");
    assert_assets_loaded_under_csp(&b).await;
    b.screenshot("login").await;

    sign_in(&b, ADMIN, "not the password").await;
    assert_eq!(
        b.text("#login-error").await,
        "Invalid username or password."
    );
    assert_eq!(b.value("#username").await, ADMIN, "username kept");
    assert_eq!(b.value("#password").await, "", "password not echoed");
    b.screenshot("login-error").await;

    // The failed attempt kept `next`: success goes to the page first asked for.
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/account").await;
    assert_eq!(b.text("h1").await, "Your account");
    let details = b.text("dl.details").await;
    assert!(details.contains(ADMIN), "{details}");
    assert!(details.contains("admin@example.com"), "{details}");
    assert!(
        !details.contains("never"),
        "last sign-in recorded: {details}"
    );
    // The username field kept for password managers is in the form but not on screen.
    let hidden = b
        .find("form[action='/account/password'] input[name=username]")
        .await;
    assert!(!hidden.is_displayed().await.unwrap(), "hidden field shown");
    assert!(
        b.find("#current_password")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert_assets_loaded_under_csp(&b).await;
    // Fixed dates, so that the documentation's image does not change with every run.
    sql(
        &app,
        "UPDATE users SET created_at = 1793611800, last_login_at = 1795513260",
    )
    .await;
    b.goto("/account").await;
    let details = b.text("dl.details").await;
    assert!(details.contains("2026-11-02 09:30 UTC"), "{details}");
    assert!(details.contains("2026-11-24 09:41 UTC"), "{details}");
    b.screenshot("account").await;
}

async fn browser_sign_out_from_the_header(db: Db) {
    let Some((_app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    b.goto("/login").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("#me-username").await, ADMIN);

    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
    assert_eq!(b.text("#notice").await, "You are signed out.");
    assert!(!b.exists(".topbar .nav").await);
    // Really signed out: the home page asks for a sign-in again.
    b.goto("/").await;
    b.wait_for_path("/login?next=%2F").await;
}

async fn browser_password_change_ends_the_session(db: Db) {
    let Some((_app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    let new_password = "a brand new passphrase";
    b.goto("/login?next=/account").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/account").await;

    b.fill("#current_password", ADMIN_PASSWORD).await;
    b.fill("#new_password", new_password).await;
    b.fill("#new_password_confirm", new_password).await;
    b.click("form[action='/account/password'] button[type=submit]")
        .await;
    b.wait_for_path("/login?notice=password_changed").await;
    let notice = b.text("#notice").await;
    assert!(notice.starts_with("Your password was changed"), "{notice}");
    assert!(!b.exists(".topbar .nav").await, "signed out");
    b.screenshot("password-changed").await;

    // This session is gone too; the old password no longer works, the new one does.
    b.goto("/account").await;
    b.wait_for_path("/login?next=%2Faccount").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        b.text("#login-error").await,
        "Invalid username or password."
    );
    sign_in(&b, ADMIN, new_password).await;
    b.wait_for_path("/account").await;
}

async fn browser_sign_in_without_javascript(db: Db) {
    let options = Options::for_db(db).without_javascript();
    let Some((_app, b)) = start(TestApp::with_admin(db).await, options).await else {
        return;
    };
    b.goto("/account").await;
    b.wait_for_path("/login?next=%2Faccount").await;
    // Scripts really are off: the page names htmx, but it never ran.
    let scripts = b
        .js("return [document.querySelector('script[src*=htmx]') !== null, typeof htmx];")
        .await;
    assert_eq!(scripts, serde_json::json!([true, "undefined"]));

    sign_in(&b, ADMIN, "not the password").await;
    assert_eq!(
        b.text("#login-error").await,
        "Invalid username or password."
    );
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/account").await;
    assert_eq!(b.text("h1").await, "Your account");

    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
}
