//! The pages in a real headless Chromium, driven like a person would: typing, clicking,
//! following redirects, with JavaScript on (and off for the sign-in and the user table). The
//! SQLite variant of each test also writes the light and dark screenshots of `docs/screens.md`
//! (see `support::browser`); pages that show a random secret (a one-time password, an API key)
//! are shot after the test has used the real one and put a fixed sample of the same shape in
//! its place, and dates are fixed through SQL, so the images only change when a page does.

use hallpass::service::Actor;
use hallpass::service::admin;
use serde_json::{Value, json};

use crate::support::browser::{Browser, DESKTOP, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql, user};

both_databases!(
    browser_setup_wizard,
    browser_sign_in_returns_to_the_page_asked_for,
    browser_sign_out_from_the_header,
    browser_password_change_ends_the_session,
    browser_sign_in_without_javascript,
    browser_user_table_with_javascript,
    browser_user_table_without_javascript,
    browser_api_key_is_shown_once_and_works,
    browser_pending_account_waits_for_approval,
    browser_admin_screens,
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
    let Some((app, b)) = start(TestApp::empty(db).await, Options::for_db(db)).await else {
        return;
    };
    // Whatever page someone opens first, an empty instance sends them to the wizard.
    b.goto("/").await;
    b.wait_for_path("/setup").await;
    assert_eq!(b.text("h1").await, "Set up Hallpass");
    assert!(
        b.exists("#setup_code").await,
        "the code is asked of every visitor, this machine's too"
    );
    assert_assets_loaded_under_csp(&b).await;
    b.screenshot("setup").await;

    // A too-short password: the error sits next to the password field, the username stays.
    let code = app.state.setup.code().unwrap();
    b.fill("#setup_code", &code).await;
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
    assert_eq!(b.value("#setup_code").await, code, "the code kept");
    assert_eq!(b.value("#password").await, "", "passwords are never echoed");
    assert!(!b.exists("#username-error").await);
    // The image shows a fixed sample code rather than this run's random one.
    let set_code =
        |c: &str| format!("document.getElementById('setup_code').value = '{c}'; return null;");
    b.js(&set_code("ABCD-EFGH")).await;
    b.screenshot("setup-error").await;
    b.js(&set_code(&code)).await;

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
    // Dates are shown in UTC (the screenshot of this page is taken with an API key listed,
    // by `browser_api_key_is_shown_once_and_works`).
    sql(
        &app,
        "UPDATE users SET created_at = 1793611800, last_login_at = 1795513260",
    )
    .await;
    b.goto("/account").await;
    let details = b.text("dl.details").await;
    assert!(details.contains("2026-11-02 09:30 UTC"), "{details}");
    assert!(details.contains("2026-11-24 09:41 UTC"), "{details}");
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

/// Eight accounts besides the admin, straight into the table (no password: fast), with fixed
/// dates so that the screenshots do not change from run to run. Two are pending, one disabled;
/// four have an address at `lab.example` (the search used below).
async fn seed_team(app: &TestApp) {
    let team = [
        ("ada", "Ada Lovelace", "ada@lab.example", "admin", "active"),
        ("alan", "Alan Turing", "alan@lab.example", "user", "pending"),
        (
            "barbara",
            "Barbara Liskov",
            "barbara@example.com",
            "user",
            "active",
        ),
        (
            "dennis",
            "Dennis Ritchie",
            "dennis@example.com",
            "user",
            "active",
        ),
        (
            "grace",
            "Grace Hopper",
            "grace@lab.example",
            "viewer",
            "active",
        ),
        ("ken", "Ken Thompson", "ken@example.com", "user", "disabled"),
        (
            "linus",
            "Linus Torvalds",
            "linus@example.com",
            "user",
            "pending",
        ),
        (
            "margaret",
            "Margaret Hamilton",
            "margaret@lab.example",
            "user",
            "active",
        ),
    ];
    for (i, (name, display, email, role, status)) in (0_i64..).zip(team) {
        let created = 1_790_000_000 + i * 5 * 86_400;
        let last_login = if status == "active" {
            (1_795_500_000 - i * 7_200).to_string()
        } else {
            "NULL".to_owned()
        };
        sql(
            app,
            format!(
                "INSERT INTO users (username, username_key, email, email_key, display_name, role, status, \
                 session_version, created_at, updated_at, last_login_at) \
                 VALUES ('{name}', '{name}', '{email}', '{email}', '{display}', '{role}', '{status}', 1, {created}, {created}, {last_login})"
            ),
        )
        .await;
    }
    // Rows written behind the app's back get their search key as after an upgrade.
    app.state
        .db
        .run(hallpass::db::user_search::fill_search_keys)
        .await
        .unwrap();
}

/// The admin's own dates, fixed after signing in (for the screenshots).
async fn fix_admin_dates(app: &TestApp) {
    sql(
        app,
        "UPDATE users SET created_at = 1789900000, last_login_at = 1795513260 WHERE username_key = 'admin'",
    )
    .await;
}

/// The usernames in the user table, top to bottom.
const TABLE_ROWS: &str = "return Array.from(document.querySelectorAll('#user-table tbody tr .username'), a => a.textContent);";

async fn table_rows(b: &Browser) -> Value {
    b.js(TABLE_ROWS).await
}

/// Waits until the user table lists exactly `expected`.
async fn wait_for_rows(b: &Browser, expected: &[&str]) {
    let script = format!(
        "const rows = (() => {{ {TABLE_ROWS} }})(); return JSON.stringify(rows) === '{}';",
        json!(expected)
    );
    b.wait_until(&format!("the rows {expected:?}"), &script)
        .await;
}

/// The status badge of a row.
fn status_badge(id: i64) -> String {
    format!("#user-{id} td.status .badge")
}

/// Opens the "More" menu of a row (a `<details>`: no JavaScript needed).
async fn open_menu(b: &Browser, id: i64) {
    b.click(&format!("#user-{id} details.menu > summary")).await;
}

async fn wait_for_status(b: &Browser, id: i64, status: &str) {
    let script = format!(
        "return document.querySelector('{}')?.textContent === '{status}';",
        status_badge(id)
    );
    b.wait_until(&format!("user {id} to show {status}"), &script)
        .await;
}

async fn stored_status(app: &TestApp, username: &str) -> String {
    user(app, username).await.status.as_str().to_owned()
}

const ALL_ROWS: [&str; 9] = [
    "ada", "admin", "alan", "barbara", "dennis", "grace", "ken", "linus", "margaret",
];
const LAB_ROWS: [&str; 4] = ["ada", "alan", "grace", "margaret"];

/// Marks the page from script: the mark survives htmx swaps but not a page load.
async fn mark_page(b: &Browser) {
    b.js("window.hallpassNoReload = true; return null;").await;
}

async fn assert_not_reloaded(b: &Browser) {
    let state = b
        .js("return [window.hallpassNoReload === true, location.pathname];")
        .await;
    assert_eq!(
        state,
        json!([true, "/admin/users"]),
        "the page was reloaded"
    );
}

async fn browser_user_table_with_javascript(db: Db) {
    let Some((app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    seed_team(&app).await;
    b.goto("/login?next=/admin/users").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/users").await;
    fix_admin_dates(&app).await;
    b.goto("/admin/users").await;
    assert_eq!(table_rows(&b).await, json!(ALL_ROWS));
    assert_eq!(b.text("#nav-pending").await, "2");
    assert_assets_loaded_under_csp(&b).await;
    b.screenshot("users").await;

    // The keyboard: the first Tab stop skips the header, and the control reached next shows
    // its focus ring.
    use fantoccini::key::Key;
    b.press(Key::Tab).await;
    let skip = b
        .js("const a = document.activeElement;
             return [a.className, a.getBoundingClientRect().top >= 0];")
        .await;
    assert_eq!(
        skip,
        json!(["skip-link", true]),
        "a visible skip link first"
    );
    b.press(Key::Enter).await;
    b.press(Key::Tab).await;
    let focused = b
        .js("const a = document.activeElement, s = getComputedStyle(a);
             return [a.id, s.outlineStyle, s.outlineWidth];")
        .await;
    assert_eq!(focused, json!(["new-user", "solid", "2px"]));

    // A hovered row keeps its badges readable in both colour schemes (axe-core checks the
    // contrast of what is on screen: the hovered background included), and an open "More"
    // menu stays inside the window.
    let ken = user(&app, "ken").await.id;
    b.hover(&format!("#user-{ken} td.status")).await;
    for dark in [false, true] {
        b.color_scheme(dark).await;
        let scheme = if dark { "dark" } else { "light" };
        b.assert_accessible("users, a hovered row", scheme).await;
    }
    b.color_scheme(false).await;
    let last = ALL_ROWS.len();
    b.click(&format!(
        "#user-table tbody tr:nth-child({last}) details.menu > summary"
    ))
    .await;
    b.assert_fits("users, the last row's menu open", DESKTOP)
        .await;

    // Only what can apply: your own row offers no Disable or Delete.
    let me = user(&app, ADMIN).await.id;
    assert!(b.exists(&format!("#user-{me} .edit")).await);
    for action in ["disable", "delete", "reject"] {
        assert!(
            !b.exists(&format!("#user-{me} .{action}")).await,
            "{action} offered on your own row"
        );
    }

    // Live search: typing filters the table in place, and the address follows (a link to
    // this view, and Back, work).
    mark_page(&b).await;
    b.fill("#q", "lab.example").await;
    wait_for_rows(&b, &LAB_ROWS).await;
    assert_not_reloaded(&b).await;
    let path = b.path().await;
    assert!(path.starts_with("/admin/users?q=lab.example"), "{path}");
    b.screenshot("users-search").await;

    // Approve a pending account: its row turns active in place, the header's count of
    // pending accounts follows (out of band), and the message area says what was done.
    let alan = user(&app, "alan").await.id;
    b.click(&format!("#user-{alan} .approve")).await;
    wait_for_status(&b, alan, "active").await;
    assert_not_reloaded(&b).await;
    assert_eq!(stored_status(&app, "alan").await, "active");
    b.wait_until(
        "the pending count to drop to 1",
        "return document.getElementById('nav-pending')?.textContent === '1';",
    )
    .await;
    assert_eq!(
        b.text("#messages #notice").await,
        "Account approved: it can use Hallpass now."
    );
    assert!(
        b.exists(&format!("#user-{alan} .disable")).await,
        "an active row offers Disable"
    );

    // Disable asks first, in the browser's own dialog.
    let margaret = user(&app, "margaret").await.id;
    open_menu(&b, margaret).await;
    b.click(&format!("#user-{margaret} .disable")).await;
    assert_eq!(
        b.accept_dialog().await,
        "Disable margaret? Their sessions and API keys stop working at once."
    );
    wait_for_status(&b, margaret, "disabled").await;
    assert_not_reloaded(&b).await;
    assert_eq!(stored_status(&app, "margaret").await, "disabled");
    assert!(b.exists(&format!("#user-{margaret} .enable")).await);
    assert_eq!(b.path().await, path, "still the search's address");
    wait_for_rows(&b, &LAB_ROWS).await;

    // A new account with a generated one-time password, which works once handed over.
    b.click("#new-user").await;
    b.wait_for_path("/admin/users/new").await;
    let generate = b
        .js("return document.querySelector('input[name=password_mode][value=generate]').checked;")
        .await;
    assert_eq!(generate, json!(true), "generating is the default");
    b.screenshot("user-new").await;
    b.fill("#username", "newcomer").await;
    b.fill("#email", "newcomer@example.com").await;
    b.fill("#display_name", "New Comer").await;
    b.click("form[action='/admin/users'] button[type=submit]")
        .await;
    b.wait_until(
        "the created page",
        "return document.querySelector('h1')?.textContent === 'User newcomer created';",
    )
    .await;
    let one_time = b.text("#one-time-password").await;
    assert_eq!(one_time.len(), 23, "{one_time}");
    assert!(
        b.exists("#one-time-password + button.copy").await,
        "a Copy button"
    );
    let c = app.client();
    assert_eq!(app.login(&c, "newcomer", &one_time).await.status(), 303);
    let me: Value = c
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "newcomer", "{me}");
    // The image shows a fixed sample of the same shape rather than this run's password.
    b.js("document.getElementById('one-time-password').textContent = 'Kq7mZ-4rTbx-9HwNa-pC3ve'; return null;")
        .await;
    b.screenshot("user-created").await;

    // The confirmation page that Disable leads to without JavaScript.
    let dennis = user(&app, "dennis").await.id;
    b.goto(&format!("/admin/users/{dennis}/confirm/disable"))
        .await;
    assert_eq!(b.text("h1").await, "Disable user");
    b.screenshot("confirm-disable").await;
}

async fn browser_user_table_without_javascript(db: Db) {
    let options = Options::for_db(db).without_javascript();
    let Some((app, b)) = start(TestApp::with_admin(db).await, options).await else {
        return;
    };
    seed_team(&app).await;
    b.goto("/login?next=/admin/users").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/users").await;
    assert_eq!(b.js("return typeof htmx;").await, json!("undefined"));
    assert_eq!(table_rows(&b).await, json!(ALL_ROWS));

    // Search: the form's Apply button loads the filtered page.
    b.fill("#q", "lab.example").await;
    b.click("#user-filters button[type=submit]").await;
    b.wait_for_path("/admin/users?q=lab.example&role=&status=&sort=username&dir=")
        .await;
    assert_eq!(table_rows(&b).await, json!(LAB_ROWS));
    assert_eq!(b.value("#q").await, "lab.example", "the search is kept");

    // Approve: a plain form, back to the same search with what was done.
    let alan = user(&app, "alan").await.id;
    b.click(&format!("#user-{alan} .approve")).await;
    b.wait_for_path("/admin/users?q=lab.example&sort=username&notice=approved")
        .await;
    assert_eq!(
        b.text("#notice").await,
        "Account approved: it can use Hallpass now."
    );
    assert_eq!(table_rows(&b).await, json!(LAB_ROWS), "still the search");
    assert_eq!(b.value("#q").await, "lab.example");
    assert_eq!(b.text(&status_badge(alan)).await, "active");
    assert_eq!(stored_status(&app, "alan").await, "active");

    // Disable: the "More" menu opens without JavaScript; its link leads to a confirmation
    // page, whose button does it and comes back to the search.
    let margaret = user(&app, "margaret").await.id;
    open_menu(&b, margaret).await;
    b.click(&format!("#user-{margaret} .disable")).await;
    b.wait_for_path(&format!(
        "/admin/users/{margaret}/confirm/disable?back=q%3Dlab.example%26sort%3Dusername"
    ))
    .await;
    let question = b.text(".card p").await;
    assert!(question.starts_with("Disable margaret?"), "{question}");
    assert_eq!(stored_status(&app, "margaret").await, "active", "not yet");
    b.click("#confirm").await;
    b.wait_for_path("/admin/users?q=lab.example&sort=username&notice=disabled")
        .await;
    assert_eq!(table_rows(&b).await, json!(LAB_ROWS), "still the search");
    assert_eq!(b.text(&status_badge(margaret)).await, "disabled");
    assert_eq!(stored_status(&app, "margaret").await, "disabled");
}

async fn browser_api_key_is_shown_once_and_works(db: Db) {
    let Some((app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    b.goto("/login?next=/account").await;
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/account").await;
    assert!(b.exists("#no-keys").await);

    b.fill("#key-name", "backup script").await;
    b.click("form[action='/account/api-keys'] button[type=submit]")
        .await;
    b.wait_for_path("/account/api-keys").await;
    assert_eq!(b.text("h1").await, "Your new API key");
    let key = b.text("#new-key").await;
    assert!(key.starts_with("hp_") && key.len() == 46, "{key}");

    // One monospace line that never breaks inside the key, and a Copy button (added by
    // static/hallpass.js) that puts all of it on the clipboard.
    let style = b
        .js(
            "const s = getComputedStyle(document.getElementById('new-key'));
             return [s.whiteSpace, s.fontFamily.includes('monospace')];",
        )
        .await;
    assert_eq!(style, json!(["nowrap", true]));
    b.grant_clipboard(&app).await;
    b.click("#api-key-created .secret-box button.copy").await;
    b.wait_until(
        "the Copy button to say Copied",
        "return document.querySelector('.secret-box button.copy').textContent === 'Copied';",
    )
    .await;
    assert_eq!(b.clipboard().await, key);

    // The key works for a script, as this user.
    let r = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["auth_method"], "api_key", "{me}");
    assert_eq!(me["username"], ADMIN, "{me}");

    // The image shows a fixed sample of the same shape rather than this run's key.
    let sample = "hp_K7fQ2xVb3mN8rT1wYc6LhA0sDgZ4pEuJ9kOqR5tXiWa";
    assert_eq!(sample.len(), key.len());
    b.js(&format!(
        "document.getElementById('new-key').textContent = '{sample}'; return null;"
    ))
    .await;
    b.screenshot("api-key-created").await;

    // Back on the account page the key is listed by name and prefix, never in full again.
    b.goto("/account").await;
    let html = b.source().await;
    assert!(!html.contains(&key), "the full key is still on /account");
    assert!(html.contains(&key[..9]), "the prefix is listed");
    let row = b.text("#api-keys tbody tr").await;
    assert!(row.contains("backup script"), "{row}");
    assert!(!b.exists("#no-keys").await);

    sql(
        &app,
        "UPDATE users SET created_at = 1793611800, last_login_at = 1795513260",
    )
    .await;
    sql(
        &app,
        "UPDATE api_keys SET prefix = 'hp_K7fQ2x', created_at = 1795513200, last_used_at = 1795513230",
    )
    .await;
    b.goto("/account").await;
    assert!(b.text("#api-keys tbody tr").await.contains("hp_K7fQ2x"));
    b.screenshot("account").await;
}

async fn browser_pending_account_waits_for_approval(db: Db) {
    let Some((app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    let password = "pat's own passphrase";
    let (profile, initial) =
        admin::parse_new_user("pat", "pat@example.com", "Pat", "user", Some(password)).unwrap();
    let (pat, _) = admin::create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        profile,
        initial,
    )
    .await
    .unwrap();
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key = 'pat'",
    )
    .await;

    // A pending account may sign in, but sees only where it stands.
    b.goto("/login").await;
    sign_in(&b, "pat", password).await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("h1").await, "Awaiting approval");
    assert_eq!(b.text(".nav a[href='/account']").await, "pat");
    assert!(!b.exists("#nav-users").await);
    b.goto("/account").await;
    assert_eq!(b.text("h1").await, "Awaiting approval");
    b.screenshot("awaiting-approval").await;

    // Once an admin approves it, the same session gets in.
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/admin/users").await;
    let r = c
        .post(app.url(&format!("/admin/users/{}/approve", pat.id)))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    b.goto("/").await;
    assert_eq!(b.text("#me-username").await, "pat");
}

/// A plain account, created through the service with a password (active, role `user`).
async fn create_account(app: &TestApp, username: &str, password: &str) -> i64 {
    let (profile, initial) = admin::parse_new_user(
        username,
        &format!("{username}@example.com"),
        "",
        "user",
        Some(password),
    )
    .unwrap();
    let (created, _) = admin::create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        profile,
        initial,
    )
    .await
    .unwrap();
    created.id
}

/// The administration pages that the other tests do not shoot: the audit log, the settings,
/// the full edit page, the purge page, the registration form and the 403 page of a non-admin.
async fn browser_admin_screens(db: Db) {
    let Some((app, b)) = start(TestApp::with_admin(db).await, Options::for_db(db)).await else {
        return;
    };
    // A failed sign-in, then a good one: both are in the audit log.
    b.goto("/login?next=/admin/audit").await;
    sign_in(&b, ADMIN, "not the password").await;
    assert_eq!(
        b.text("#login-error").await,
        "Invalid username or password."
    );
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/audit").await;
    fix_admin_dates(&app).await;
    // Fixed times (a minute apart, in the order of the events) and a documentation address.
    sql(&app, "UPDATE audit_events SET at = 1795513000 + 60 * id").await;
    sql(
        &app,
        "UPDATE audit_events SET ip = '192.0.2.10' WHERE ip IS NOT NULL",
    )
    .await;
    b.goto("/admin/audit").await;
    assert_eq!(b.text("h1").await, "Audit log");
    let outcomes = b
        .js("return Array.from(document.querySelectorAll('#audit-table tbody tr'), r => r.dataset.outcome);")
        .await;
    let outcomes: Vec<&str> = outcomes
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"success"), "{outcomes:?}");
    assert!(
        outcomes.len() >= 2 && outcomes.iter().any(|o| *o != "success"),
        "{outcomes:?}"
    );
    assert!(b.exists("#audit-filter").await);
    b.screenshot("audit").await;

    b.goto("/admin/settings").await;
    assert_eq!(b.text("h1").await, "Settings");
    assert!(b.exists("#settings-form #registration_enabled").await);
    assert!(b.exists("#settings-form #auto_approve_registrations").await);
    b.screenshot("settings").await;

    // The full edit page (the table edits inline with JavaScript; this is the page without).
    let pat_password = "pat's own passphrase";
    let pat = create_account(&app, "pat", pat_password).await;
    sql(
        &app,
        "UPDATE users SET display_name = 'Pat Morgan', created_at = 1793611800, updated_at = 1793611800 WHERE username_key = 'pat'",
    )
    .await;
    // Two groups, Pat in one of them: the Groups box ticks it.
    let mut groups = Vec::new();
    for (name, description) in [("Family", "Everyone at home"), ("Media", "")] {
        let input = hallpass::domain::groups::GroupInput::parse(name, description).unwrap();
        let g = hallpass::service::groups::create(&app.state.db, Actor::system("test"), input)
            .await
            .unwrap();
        groups.push(g.id);
    }
    hallpass::service::groups::set_user_groups(
        &app.state.db,
        Actor::system("test"),
        pat,
        vec![groups[0]],
    )
    .await
    .unwrap();
    b.goto(&format!("/admin/users/{pat}/edit")).await;
    assert_eq!(b.text("h1").await, "Edit user");
    assert_eq!(b.value("#username").await, "pat");
    assert_eq!(b.value("#display_name").await, "Pat Morgan");
    assert!(b.exists("#new_password").await, "the reset password form");
    let ticked = b
        .js("return Array.from(document.querySelectorAll('#groups-form input[name=group]'), i => i.checked);")
        .await;
    assert_eq!(ticked, json!([true, false]), "Family ticked, Media not");
    b.screenshot("user-edit").await;

    // Purging a deleted account asks for its name.
    let gone = create_account(&app, "dana", "dana's old passphrase").await;
    sql(
        &app,
        "UPDATE users SET status = 'disabled', deleted_at = 1795000000 WHERE username_key = 'dana'",
    )
    .await;
    b.goto(&format!("/admin/users/{gone}/purge")).await;
    assert_eq!(b.text("h1").await, "Purge dana");
    assert!(
        b.exists(&format!(
            "form[action='/admin/users/{gone}/purge'] #confirm"
        ))
        .await
    );
    b.screenshot("purge").await;

    // Self-registration, once switched on, for someone signed out.
    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
    sql(&app, "UPDATE settings SET registration_enabled = 1").await;
    b.goto("/register").await;
    assert_eq!(b.text("h1").await, "Create an account");
    assert!(b.exists("#register-form #password_confirm").await);
    assert!(
        b.exists("#approval-hint").await,
        "approval is not automatic"
    );
    b.screenshot("register").await;

    // A non-admin asking for an admin page.
    b.goto("/login?next=/admin/users").await;
    sign_in(&b, "pat", pat_password).await;
    b.wait_for_path("/admin/users").await;
    assert_eq!(b.text(".error-page .status-code").await, "403");
    assert_eq!(b.text("h1").await, "Not allowed");
    assert!(!b.exists("#user-table").await);
    assert!(!b.exists("#nav-users").await, "no admin link for a user");
    assert!(
        b.exists(".topbar form[action='/logout'] button").await,
        "the error page keeps Sign out"
    );
    b.screenshot("forbidden").await;
}

/// Every screenshot comes in light, dark and phone size, and has its page in `docs/screens/`, linked from
/// `docs/screens.md`, that shows all three: no screen goes undocumented, no page shows a stale name.
#[test]
fn every_screen_is_documented() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let index = read(&docs.join("screens.md"));
    let mut screens = Vec::new();
    for entry in std::fs::read_dir(docs.join("screenshots")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(base) = name.strip_suffix(".png") else {
            panic!("not a PNG in docs/screenshots: {name}");
        };
        if base.strip_suffix("-dark").is_none() && base.strip_suffix("-phone").is_none() {
            screens.push(base.to_owned());
        }
    }
    screens.sort();
    assert!(screens.len() >= 11, "{screens:?}");
    for screen in &screens {
        for variant in ["dark", "phone"] {
            assert!(
                docs.join(format!("screenshots/{screen}-{variant}.png"))
                    .is_file(),
                "no {variant} screenshot of {screen}"
            );
        }
        assert!(
            index.contains(&format!("(screens/{screen}.md)")),
            "docs/screens.md does not link {screen}"
        );
        let page = read(&docs.join(format!("screens/{screen}.md")));
        for image in [
            format!("{screen}.png"),
            format!("{screen}-dark.png"),
            format!("{screen}-phone.png"),
        ] {
            assert!(
                page.contains(&format!("(../screenshots/{image})")),
                "docs/screens/{screen}.md does not show {image}"
            );
        }
    }
    for entry in std::fs::read_dir(docs.join("screens")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let screen = name.strip_suffix(".md").unwrap();
        assert!(
            screens.iter().any(|s| s == screen),
            "docs/screens/{name} has no screenshot"
        );
    }
}

both_databases!(browser_setup_key_and_new_user_without_javascript);

/// The flows that the JavaScript-on tests cover, once more with scripts off: the setup
/// wizard, creating an API key, and creating a user with a one-time password.
async fn browser_setup_key_and_new_user_without_javascript(db: Db) {
    let options = Options::for_db(db).without_javascript().no_screenshots();
    let Some((app, b)) = start(TestApp::empty(db).await, options).await else {
        return;
    };
    b.goto("/").await;
    b.wait_for_path("/setup").await;
    assert_eq!(b.js("return typeof htmx;").await, json!("undefined"));
    b.fill("#setup_code", &app.state.setup.code().unwrap())
        .await;
    b.fill("#username", "nojs").await;
    b.fill("#password", "a long passphrase").await;
    b.fill("#password_confirm", "a long passphrase").await;
    b.click("form[action='/setup'] button[type=submit]").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("#me-username").await, "nojs");

    // An API key from the account page.
    b.goto("/account").await;
    b.fill("#key-name", "cron").await;
    b.click("form[action='/account/api-keys'] button[type=submit]")
        .await;
    b.wait_for_path("/account/api-keys").await;
    let key = b.text("#new-key").await;
    let r = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A new user with a generated one-time password.
    b.goto("/admin/users/new").await;
    b.fill("#username", "fresh").await;
    b.click("form[action='/admin/users'] button[type=submit]")
        .await;
    b.wait_for_path("/admin/users").await;
    let otp = b.text("#one-time-password").await;
    assert!(otp.len() >= 20, "{otp}");
    assert_eq!(app.login(&app.client(), "fresh", &otp).await.status(), 303);
}
