//! Invite links in a real headless Chromium: an admin makes one on `/admin/invites` (a
//! mistake first: the message by the field, the input kept), copies the link, signs out; the
//! link's page makes the account and signs it in; the used link then says so; another invite
//! is revoked through its confirmation page. The SQLite run writes the `invites`,
//! `invite-created`, `invite-signup`, `invite-used` and `invite-revoke` screenshots, light
//! and dark. The pages use no script: the same flow works without JavaScript.

use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql, user};

both_databases!(
    browser_invites_with_javascript,
    browser_invites_without_javascript
);

async fn sign_in(b: &Browser, next: &str) {
    b.goto(&format!("/login?next={next}")).await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path(next).await;
}

/// The fixed times the screenshots show (the real ones change with every run): an expiry
/// in the past stays in the past, one in the future moves to 2030 (still ahead of the clock).
async fn fixed_times(app: &TestApp) {
    sql(
        app,
        "UPDATE invites SET created_at = 1795000000 + 3600 * id, \
         expires_at = CASE WHEN expires_at <= 1795200000 THEN 1795200000 ELSE 1893456000 END, \
         used_at = CASE WHEN used_at IS NULL THEN NULL ELSE 1795100000 END, \
         revoked_at = CASE WHEN revoked_at IS NULL THEN NULL ELSE 1795300000 END",
    )
    .await;
}

async fn flow(db: Db, options: Options) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let Some(b) = Browser::start(&app, options).await else {
        return;
    };
    let input = hallpass::domain::groups::GroupInput::parse("Family", "").unwrap();
    let actor = hallpass::service::Actor::system("test");
    let family = hallpass::service::groups::create(&app.state.db, actor, input)
        .await
        .unwrap()
        .id;
    sign_in(&b, "/admin/invites").await;
    assert!(
        b.exists("#nav-invites").await,
        "the Invites link in the header"
    );
    assert!(b.exists("#no-invites").await);

    // A mistake: the message by the field, everything typed kept.
    b.fill("#invite-create #username", "kim").await;
    b.fill("#invite-create #email", "kim@example.com").await;
    b.click("#role option[value=viewer]").await;
    b.click(&format!("#group-{family}")).await;
    b.fill("#invite-create #expires_in_days", "0").await;
    b.click("#create-invite").await;
    b.wait_until(
        "the error by the expiry",
        "return document.getElementById('expires_in_days-error') !== null;",
    )
    .await;
    assert_eq!(b.value("#invite-create #username").await, "kim");
    assert_eq!(b.value("#role").await, "viewer");
    assert!(
        b.js(&format!(
            "return document.getElementById('group-{family}').checked;"
        ))
        .await
        .as_bool()
        .unwrap()
    );
    b.fill("#invite-create #expires_in_days", "7").await;
    b.click("#create-invite").await;
    b.wait_until(
        "the link",
        "return document.getElementById('invite-link') !== null;",
    )
    .await;
    let link = b.text("#invite-link").await;
    let path = link[link.find("/invite/").unwrap()..].to_owned();
    // The link and the expiry change with every run: fixed ones for the picture.
    b.js("document.getElementById('invite-link').textContent = \
         'https://auth.example.com/invite/hpi_Xq3v9RkT2mWcYp8LbN4sHd7GfJ1aZe6UoIyE5rQwKtM'; \
         document.querySelectorAll('#invite-created dd')[4].textContent = '2026-12-09 10:00 UTC'; \
         return null;")
        .await;
    b.screenshot("invite-created").await;

    // The invitee: signed out, opens the link.
    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
    b.goto(&path).await;
    assert_eq!(b.value("#invite-form #username").await, "kim");
    assert!(
        b.text("#invite-summary")
            .await
            .contains("viewer, member of Family")
    );
    b.screenshot("invite-signup").await;
    b.fill("#invite-form #username", "kimberly").await;
    b.fill("#invite-form #password", "a long invited passphrase")
        .await;
    b.fill(
        "#invite-form #password_confirm",
        "a long invited passphrase",
    )
    .await;
    b.click("#invite-form button[type=submit]").await;
    b.wait_for_path("/").await;
    assert_eq!(
        user(&app, "kimberly").await.role,
        hallpass::domain::Role::Viewer
    );
    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
    b.goto(&path).await;
    assert!(b.exists("#invite-used").await);
    b.screenshot("invite-used").await;

    // Two more, one to revoke through its confirmation page and one left to expire.
    sign_in(&b, "/admin/invites").await;
    for who in ["lee@example.com", "sam"] {
        let field = if who.contains('@') {
            "email"
        } else {
            "username"
        };
        b.fill(&format!("#invite-create #{field}"), who).await;
        b.click("#create-invite").await;
        b.wait_until(
            "the link",
            "return document.getElementById('invite-link') !== null;",
        )
        .await;
        b.goto("/admin/invites").await;
    }
    sql(
        &app,
        "UPDATE invites SET expires_at = 1 WHERE email = 'lee@example.com'",
    )
    .await;
    fixed_times(&app).await;
    b.goto("/admin/invites").await;
    b.click("#invites-table .revoke").await;
    b.wait_until(
        "the confirmation",
        "return document.getElementById('confirm') !== null;",
    )
    .await;
    b.screenshot("invite-revoke").await;
    b.click("#confirm").await;
    b.wait_for_path("/admin/invites?notice=revoked").await;
    assert!(b.exists("#notice").await);
    fixed_times(&app).await;
    b.goto("/admin/invites").await;
    let states = b
        .js("return Array.from(document.querySelectorAll('#invites-table .invite-state'), s => s.textContent);")
        .await;
    assert_eq!(states, serde_json::json!(["revoked", "expired", "used"]));
    b.screenshot("invites").await;
}

async fn browser_invites_with_javascript(db: Db) {
    flow(db, Options::for_db(db)).await;
}

async fn browser_invites_without_javascript(db: Db) {
    flow(
        db,
        Options::for_db(db).without_javascript().no_screenshots(),
    )
    .await;
}
