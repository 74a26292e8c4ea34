//! Two-factor sign-in in a real headless Chromium: enrolment from the account page with a
//! code computed here from the secret the page shows, then a sign-in through the second
//! step (the SQLite run writes the screenshots, light and dark); and, without JavaScript,
//! the enrolment a requirement forces right after the password.

use serde_json::json;

use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user};
use crate::two_factor::{code_at, now};

both_databases!(
    browser_two_factor_enrolment_and_sign_in,
    browser_two_factor_required_without_javascript
);

/// A fixed example secret for the screenshots: the real one changes every run, and the
/// images must not. The QR code shown is drawn from it by the same crate the server uses.
const EXAMPLE_SECRET: &str = "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP";

/// Puts the example secret (and its QR code) on the enrolment page before a screenshot.
async fn show_example_secret(b: &Browser) {
    let uri = format!(
        "otpauth://totp/Hallpass:admin?secret={}&issuer=Hallpass&algorithm=SHA1&digits=6&period=30",
        EXAMPLE_SECRET.replace(' ', "")
    );
    let svg = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .unwrap()
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let svg = &svg[svg.find("<svg").unwrap()..];
    b.js(&format!(
        "document.getElementById('secret').textContent = {}; document.getElementById('qr').innerHTML = {}; return null;",
        json!(EXAMPLE_SECRET),
        json!(svg)
    ))
    .await;
}

async fn sign_in(b: &Browser, username: &str, password: &str, next: &str) {
    b.goto(&format!("/login?next={next}")).await;
    b.fill("#username", username).await;
    b.fill("#password", password).await;
    b.click("form[action='/login'] button[type=submit]").await;
}

async fn browser_two_factor_enrolment_and_sign_in(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    sign_in(&b, ADMIN, ADMIN_PASSWORD, "/account").await;
    b.wait_for_path("/account").await;
    b.click("#two-factor-settings").await;
    b.wait_for_path("/account/two-factor").await;
    assert!(b.text("#two-factor-state").await.starts_with("Off"));
    b.click("#start-form button").await;
    b.find("#confirm-form").await;
    // The QR code is an SVG drawn on the server, inside the page.
    let drawn = b
        .js("return document.querySelector('#qr svg path')?.getAttribute('d')?.length ?? 0;")
        .await;
    assert!(drawn.as_u64().unwrap() > 100, "a QR code: {drawn}");
    assert!(b.exists("#secret + button.copy").await, "a Copy button");
    let secret = b.text("#secret").await;
    assert_eq!(
        secret.replace(' ', "").len(),
        32,
        "160 bits in base32: {secret}"
    );

    show_example_secret(&b).await;
    b.screenshot("two-factor-enrol").await;
    // A wrong code first: the form comes back with the message by the field.
    b.fill("#code", "000000").await;
    b.click("#confirm-form button[type=submit]").await;
    b.find("#code-error").await;
    assert!(b.text("#code-error").await.contains("does not match"));
    assert_eq!(
        b.text("#secret").await,
        secret,
        "the same secret, shown again"
    );
    b.fill("#code", &code_at(&secret, now())).await;
    b.click("#confirm-form button[type=submit]").await;
    b.find("#recovery-codes").await;
    let codes = b
        .js("return Array.from(document.querySelectorAll('#recovery-codes code'), c => c.textContent);")
        .await;
    let codes: Vec<String> = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    b.js("document.querySelectorAll('#recovery-codes code').forEach((c, i) => { c.textContent = ['k7m2p-x9qtr','4hv8n-wz3cy','pq6sa-e5jd2','t3xk9-bm7uf','9rcwe-hn4vz','a2ug8-qy6ks','mz5tb-3pxwe','fj7cn-r2vh9','wx4dq-8tm6a','e6yh3-ksn5p'][i]; }); return null;").await;
    b.screenshot("two-factor-recovery-codes").await;
    b.click("#continue").await;
    b.wait_for_path("/account/two-factor").await;
    assert!(b.text("#two-factor-state").await.starts_with("On"));
    assert_eq!(b.text("#codes-left").await, "10 of 10 recovery codes left.");
    b.screenshot("two-factor-account").await;

    // Sign out and in again: now the password leads to the second step.
    b.click("form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD, "/account").await;
    b.wait_for_path("/login/two-factor").await;
    b.screenshot("two-factor-sign-in").await;
    b.fill("#code", "123 456").await;
    b.click("#code-form button[type=submit]").await;
    b.find("#code-error").await;
    b.fill("#code", &code_at(&secret, now() + 30)).await;
    b.click("#code-form button[type=submit]").await;
    b.wait_for_path("/account").await;

    // The admin's view of someone's second factor, from the user table.
    let member = add_user(&app, "robin", "user").await;
    b.goto("/admin/users").await;
    b.click(&format!("#user-{member} details.menu > summary"))
        .await;
    b.click(&format!("#user-{member} a.two-factor")).await;
    b.wait_for_path(&format!("/admin/users/{member}/two-factor"))
        .await;
    assert!(b.text("#two-factor-state").await.starts_with("Off"));
    let me = crate::support::user(&app, ADMIN).await.id;
    b.goto(&format!("/admin/users/{me}/two-factor")).await;
    assert!(b.exists("#reset").await);
    b.screenshot("two-factor-admin").await;
}

async fn browser_two_factor_required_without_javascript(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let options = Options::for_db(db).without_javascript().no_screenshots();
    let Some(b) = Browser::start(&app, options).await else {
        return;
    };
    add_user(&app, "robin", "user").await;
    // The admin requires it of everyone, on the settings page.
    sign_in(&b, ADMIN, ADMIN_PASSWORD, "/admin/settings").await;
    b.wait_for_path("/admin/settings").await;
    b.click("#two-factor-everyone").await;
    b.click("#two-factor-form button[type=submit]").await;
    b.wait_for_path("/admin/settings?saved=1").await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;

    // Robin's password leads to enrolment, and nothing else opens until it is done.
    sign_in(&b, "robin", MEMBER_PASSWORD, "/account").await;
    b.wait_for_path("/login/two-factor/setup").await;
    assert!(b.exists("#enforced").await);
    let secret = b.text("#secret").await;
    b.goto("/account").await;
    b.wait_for_path("/login?next=%2Faccount").await;
    b.goto("/login/two-factor/setup").await;
    assert_eq!(b.text("#secret").await, secret);
    b.fill("#code", &code_at(&secret, now())).await;
    b.click("#confirm-form button[type=submit]").await;
    b.find("#recovery-codes").await;
    b.click("#continue").await;
    b.wait_for_path("/account").await;
    assert!(b.text("h1").await.contains("Your account"));
}
