//! Single sign-on in a real headless Chromium against the real OpenID provider of
//! `support::idp` (npm `oidc-provider` on loopback): the admin's three-step wizard, signing in
//! with the "Sign in with …" button, Test discovery without JavaScript, the sign-in page's
//! banners after real failed sign-ins, and the confirmation pages. The SQLite variant of each
//! test writes the screenshots of `docs/screens.md` and `docs/sso.md` (see `support::browser`).
//!
//! The pages show the random loopback ports of the app and the IdP (the issuer, the redirect
//! URI): just before a screenshot the test puts fixed ports in their place on the page
//! (`127.0.0.1:8700` for Hallpass, `:9000` for the IdP) and puts the real ones back after, and
//! dates are fixed through SQL, so the images only change when a page does.

use hallpass::config::Config;
use hallpass::domain::sso::{Policy, Provider, Source};
use secrecy::SecretString;
use serde_json::json;

use crate::support::browser::{Browser, Options};
use crate::support::idp::{ALICE, BOB, DefaultUser, Idp, Tamper};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql, user};

both_databases!(
    browser_sso_wizard_then_sign_in_with_the_button,
    browser_sso_test_discovery_without_javascript,
    browser_sso_sign_in_banners,
    browser_sso_admin_screens,
    browser_sso_override_banner,
);

const CLIENT_ID: &str = "hallpass";
const CLIENT_SECRET: &str = "idp-client-secret-0123456789";
/// The provider every test uses (added in the wizard, or defined in the environment).
const ID: &str = "home";
const LABEL: &str = "Home IdP";
/// The ports the screenshots show instead of the random ones.
const SHOWN_APP_PORT: u16 = 8700;
const SHOWN_IDP_PORT: u16 = 9000;

/// An app with the bootstrap admin, its IdP (client `hallpass` registered with the callback of
/// provider `home`) and a browser on the app; `None` = skip (no PostgreSQL or no Chromium).
struct Sso {
    app: TestApp,
    idp: Idp,
    b: Browser,
}

/// `env_policy`: also define provider `home` in the environment, with this policy.
async fn start(
    db: Db,
    options: Options,
    env_policy: Option<Policy>,
    tweak: impl FnOnce(&mut Config),
) -> Option<Sso> {
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let app = TestApp::start(
        db,
        move |c| {
            if let Some(policy) = env_policy {
                c.sso.providers.push(env_provider(&issuer, policy));
            }
            tweak(c);
        },
        true,
    )
    .await?;
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url(&format!("/api/auth/oidc/{ID}/callback"))],
    )
    .await;
    let b = Browser::start(&app, options).await?;
    Some(Sso { app, idp, b })
}

/// Provider `home` as `HALLPASS_OIDC_PROVIDERS=home` and its `HALLPASS_OIDC_HOME_*` make it.
fn env_provider(issuer: &str, policy: Policy) -> Provider {
    Provider {
        id: ID.to_owned(),
        label: LABEL.to_owned(),
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(SecretString::from(CLIENT_SECRET.to_owned())),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        subject_claim: "sub".into(),
        username_claim: "preferred_username".into(),
        email_claim: "email".into(),
        groups_claim: None,
        policy,
        enabled: true,
        source: Source::Env,
    }
}

/// Signs in through the password form on `/login` (the browser must be on it).
async fn sign_in(b: &Browser, username: &str, password: &str) {
    b.fill("#username", username).await;
    b.fill("#password", password).await;
    b.click("form[action='/login'] button[type=submit]").await;
}

async fn sign_out(b: &Browser) {
    b.click(".topbar form[action='/logout'] button").await;
    b.wait_for_path("/login?notice=signed_out").await;
}

/// The browser is on its way to the IdP: waits for the IdP's sign-in form and signs in there
/// as `who` (the IdP then sends the browser back to Hallpass).
async fn sign_in_at_idp(s: &Sso, who: DefaultUser) {
    s.b.find("input[name=login]").await;
    let origin = s.b.js("return location.origin;").await;
    assert_eq!(origin, json!(s.idp.issuer), "the IdP's form, not another");
    s.b.fill("input[name=login]", who.username).await;
    s.b.fill("input[name=password]", who.password).await;
    s.b.click("form button[type=submit]").await;
}

/// The browser is on its way to the IdP, where it may already be signed in (the IdP keeps its
/// own session): signs in as `who` if the IdP asks, else lets it send the browser straight
/// back. Returns whether the IdP asked.
async fn through_idp(s: &Sso, who: DefaultUser) -> bool {
    let app = format!("http://{}", s.app.addr);
    let script = format!(
        "return (location.origin === '{idp}' && document.querySelector('input[name=login]') !== null)
             || (location.origin === '{app}' && !location.pathname.startsWith('/api/auth/oidc/'));",
        idp = s.idp.issuer
    );
    s.b.wait_until("the IdP's form or a Hallpass page", &script)
        .await;
    let asked = s.b.js("return location.origin;").await == json!(s.idp.issuer);
    if asked {
        sign_in_at_idp(s, who).await;
    }
    asked
}

/// Host and port of the IdP's issuer (`127.0.0.1:41234`).
fn idp_port(idp: &Idp) -> u16 {
    url::Url::parse(&idp.issuer).unwrap().port().unwrap()
}

/// Shoots the page with the fixed ports in place of the random ones (in every text and input
/// of the page), then puts the real ones back, so that the test can carry on with the page.
async fn screenshot_with_fixed_ports(s: &Sso, name: &str) {
    let (app, idp) = (s.app.addr.port(), idp_port(&s.idp));
    let mut pairs = vec![
        (
            format!("127.0.0.1:{app}"),
            format!("127.0.0.1:{SHOWN_APP_PORT}"),
        ),
        (
            format!("127.0.0.1:{idp}"),
            format!("127.0.0.1:{SHOWN_IDP_PORT}"),
        ),
        (
            format!("localhost:{idp}"),
            format!("localhost:{SHOWN_IDP_PORT}"),
        ),
    ];
    // `…:4123` must not be replaced inside `…:41234` first.
    pairs.sort_by_key(|(real, _)| std::cmp::Reverse(real.len()));
    s.b.js(&format!(
        "const pairs = {};
         const fix = t => pairs.reduce((t, [real, shown]) => t.split(real).join(shown), t);
         const saved = [];
         const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
         for (let n = walk.nextNode(); n; n = walk.nextNode()) {{
             const v = fix(n.nodeValue);
             if (v !== n.nodeValue) {{ saved.push([n, 'nodeValue', n.nodeValue]); n.nodeValue = v; }}
         }}
         for (const i of document.querySelectorAll('input')) {{
             const v = fix(i.value);
             if (v !== i.value) {{ saved.push([i, 'value', i.value]); i.value = v; }}
         }}
         window.hallpassRealPorts = saved;
         return null;",
        json!(pairs)
    ))
    .await;
    s.b.screenshot(name).await;
    s.b.js(
        "for (const [n, key, v] of window.hallpassRealPorts || []) n[key] = v;
         delete window.hallpassRealPorts;
         return null;",
    )
    .await;
}

/// Marks the page from script: the mark survives htmx swaps but not a page load.
async fn mark_page(b: &Browser) {
    b.js("window.hallpassNoReload = true; return null;").await;
}

async fn assert_not_reloaded(b: &Browser) {
    assert_eq!(
        b.js("return window.hallpassNoReload === true;").await,
        json!(true),
        "the page was reloaded"
    );
}

/// Waits until the discovery result (swapped in by htmx, or on a new page) contains `text`.
async fn wait_for_discovery(b: &Browser, text: &str) {
    let script = format!(
        "return (document.querySelector('#discovery-result')?.textContent ?? '').includes({});",
        json!(text)
    );
    b.wait_until(&format!("a discovery result with {text:?}"), &script)
        .await;
}

async fn checked(b: &Browser, css: &str) -> bool {
    b.find(css).await.prop("checked").await.unwrap().as_deref() == Some("true")
}

/// Step 1 of the wizard on `/admin/sso/new`: the connection form filled in for `issuer`.
async fn fill_connection(b: &Browser, issuer: &str, secret: &str) {
    b.fill("#id", ID).await;
    b.fill("#label", LABEL).await;
    b.fill("#issuer", issuer).await;
    b.fill("#client_id", CLIENT_ID).await;
    b.fill("#client_secret", secret).await;
}

/// The whole wizard as an admin does it, then a sign-in with the new button: step 1 (the
/// connection, Test discovery swapped in by htmx, Save), step 2 (Verify & Link through the
/// IdP's own sign-in form), step 3 (SSO on, password sign-in off); signed out, the sign-in
/// page offers only the button, which signs the admin in through the IdP.
async fn browser_sso_wizard_then_sign_in_with_the_button(db: Db) {
    let Some(s) = start(db, Options::for_db(db), None, |_| {}).await else {
        return;
    };
    let b = &s.b;
    b.goto("/login?next=/admin/sso").await;
    sign_in(b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/sso").await;
    assert_eq!(b.text("h1").await, "Single sign-on");
    assert!(b.exists("#no-providers").await);
    assert!(!checked(b, "#sso_enabled").await, "SSO login starts off");
    assert!(checked(b, "#local_login_enabled").await);

    // Step 1: the connection, and Test discovery in place.
    b.click("#add-provider").await;
    b.wait_for_path("/admin/sso/new").await;
    assert_eq!(b.text("h1").await, "Add a provider");
    assert_eq!(
        b.text("#redirect-uri").await,
        s.app.url("/api/auth/oidc/<id>/callback"),
        "the id is not chosen yet"
    );
    fill_connection(b, &s.idp.issuer, CLIENT_SECRET).await;
    // The redirect URI follows the id as it is typed, and has a Copy button.
    assert_eq!(
        b.text("#redirect-uri").await,
        s.app.url(&format!("/api/auth/oidc/{ID}/callback"))
    );
    assert!(b.exists("#redirect-uri + button.copy").await);
    // The step pills and the section headings name the steps alike.
    assert_eq!(
        b.text(".steps li:nth-child(3)").await,
        "3 · Sign-in methods"
    );
    mark_page(b).await;
    b.click("#test-discovery").await;
    wait_for_discovery(b, "Discovery succeeded").await;
    assert_not_reloaded(b).await;
    assert_eq!(b.path().await, "/admin/sso/new");
    let result = b.find("#discovery-result").await;
    assert_eq!(
        result.attr("data-ok").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        result
            .attr("class")
            .await
            .unwrap()
            .is_some_and(|c| c.contains("alert-success"))
    );
    assert_eq!(b.value("#client_secret").await, CLIENT_SECRET, "form kept");
    screenshot_with_fixed_ports(&s, "sso-discovery").await;
    assert_eq!(b.value("#issuer").await, s.idp.issuer, "real issuer back");

    b.click("#save-provider").await;
    b.wait_for_path(&format!("/admin/sso/providers/{ID}/links?notice=created"))
        .await;
    let notice = b.text("#notice").await;
    assert!(notice.starts_with("Provider saved."), "{notice}");
    assert!(b.exists("#no-links").await);

    // Step 2: Verify & Link, through the IdP's own sign-in form.
    b.click("#verify-and-link").await;
    sign_in_at_idp(&s, ALICE).await;
    let linked = format!("/admin/sso/providers/{ID}/links?linked={ID}");
    b.wait_for_path(&linked).await;
    let notice = b.text("#notice").await;
    assert!(
        notice.starts_with(&format!(
            "Verified: your identity at {LABEL} is now linked to your account ({ADMIN})."
        )),
        "{notice}"
    );
    let row = b.text("#links-table tbody tr").await;
    assert!(row.contains(ADMIN), "{row}");
    assert!(row.contains(ALICE.sub), "{row}");
    assert!(row.contains(ALICE.email), "{row}");
    assert_eq!(
        b.js("return document.querySelectorAll('#links-table tbody tr').length;")
            .await,
        json!(1)
    );
    sql(&s.app, "UPDATE identities SET created_at = 1795513260").await;
    b.goto(&linked).await;
    assert!(
        b.text("#links-table tbody tr")
            .await
            .contains("2026-11-24 09:41 UTC")
    );
    b.screenshot("sso-linked").await;

    // Step 3: SSO login on, password sign-in off.
    b.click("#to-step-3").await;
    b.wait_for_path("/admin/sso").await;
    b.click("#sso_enabled").await;
    b.click("#local_login_enabled").await;
    assert!(checked(b, "#sso_enabled").await);
    assert!(!checked(b, "#local_login_enabled").await);
    b.click("#save-modes").await;
    b.wait_for_path("/admin/sso?notice=saved").await;
    assert_eq!(b.text("#notice").await, "Sign-in settings saved.");
    assert!(checked(b, "#sso_enabled").await, "stored");
    assert!(!checked(b, "#local_login_enabled").await, "stored");
    let provider = b.text(&format!("#provider-{ID}")).await;
    assert!(
        provider.contains(LABEL) && provider.contains("admin UI"),
        "{provider}"
    );
    screenshot_with_fixed_ports(&s, "sso-overview").await;

    // Signed out, the sign-in page offers only the button.
    sign_out(b).await;
    b.goto("/login").await;
    assert!(!b.exists("#password-form").await, "password form hidden");
    assert!(!b.exists(".divider").await);
    let button = format!("#sso-buttons a#sso-{ID}");
    assert_eq!(b.text(&button).await, format!("Sign in with {LABEL}"));
    b.screenshot("login-sso").await;

    // The button: through the IdP (still signed in there since Verify & Link) and back in.
    b.click(&button).await;
    through_idp(&s, ALICE).await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("#me-username").await, ADMIN);
    assert_eq!(b.text("#me-role").await, "admin");
    assert_eq!(user(&s.app, ADMIN).await.role.as_str(), "admin");
}

/// Without JavaScript, Test discovery submits the whole form and the page comes back with
/// the result and everything typed (but the secret); Save works the same way.
async fn browser_sso_test_discovery_without_javascript(db: Db) {
    let options = Options::for_db(db).without_javascript().no_screenshots();
    let Some(s) = start(db, options, None, |_| {}).await else {
        return;
    };
    let b = &s.b;
    b.goto("/login?next=/admin/sso/new").await;
    sign_in(b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/sso/new").await;
    assert_eq!(b.js("return typeof htmx;").await, json!("undefined"));

    fill_connection(b, &s.idp.issuer, "typed secret").await;
    b.fill("#scopes", "openid profile email groups").await;
    b.click("#test-discovery").await;
    wait_for_discovery(b, "Discovery succeeded").await;
    assert_eq!(b.path().await, "/admin/sso/new");
    assert_eq!(
        b.find("#discovery-result")
            .await
            .attr("data-ok")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(b.value("#id").await, ID, "input kept");
    assert_eq!(b.value("#label").await, LABEL);
    assert_eq!(b.value("#issuer").await, s.idp.issuer);
    assert_eq!(b.value("#client_id").await, CLIENT_ID);
    assert_eq!(b.value("#scopes").await, "openid profile email groups");
    assert_eq!(
        b.value("#client_secret").await,
        "",
        "secrets are never echoed"
    );

    // A mismatching issuer: the message says so, and the issuer stays as typed to fix it.
    let other = s.idp.issuer.replace("127.0.0.1", "localhost");
    b.fill("#issuer", &other).await;
    b.click("#test-discovery").await;
    wait_for_discovery(b, "Issuer mismatch").await;
    assert_eq!(
        b.find("#discovery-result")
            .await
            .attr("data-ok")
            .await
            .unwrap()
            .as_deref(),
        Some("false")
    );
    assert_eq!(b.value("#issuer").await, other, "issuer kept as typed");
    assert_eq!(b.value("#label").await, LABEL);

    // Save, with the right issuer and the secret typed again.
    b.fill("#issuer", &s.idp.issuer).await;
    b.fill("#client_secret", CLIENT_SECRET).await;
    b.click("#save-provider").await;
    b.wait_for_path(&format!("/admin/sso/providers/{ID}/links?notice=created"))
        .await;
    assert!(b.exists("#verify-and-link").await);
}

/// The sign-in page's banners, each after the real failure it reports: an identity nobody
/// linked (policy `link`), a callback that matches no sign-in started here (a bookmark), an
/// ID token that does not verify, and a provider that does not exist.
async fn browser_sso_sign_in_banners(db: Db) {
    let Some(s) = start(db, Options::for_db(db), Some(Policy::Link), |_| {}).await else {
        return;
    };
    let b = &s.b;
    let button = format!("#sso-{ID}");
    let banner = |code: &str| {
        hallpass::domain::sso::SignInProblem::parse(code)
            .map(hallpass::domain::sso::SignInProblem::message)
            .unwrap()
    };

    // An environment provider turns SSO login on; the password form stays.
    b.goto("/login").await;
    assert_eq!(b.text(&button).await, format!("Sign in with {LABEL}"));
    assert!(b.exists("#password-form").await);
    assert!(b.exists(".divider").await);

    // Bob has an identity at the IdP, but nobody linked it to an account here.
    b.click(&button).await;
    sign_in_at_idp(&s, BOB).await;
    b.wait_for_path("/login?sso_error=not_linked").await;
    assert_eq!(b.text("#sso-error").await, banner("not_linked"));
    b.screenshot("login-sso-not-linked").await;

    // A callback that matches no sign-in started in this browser (a bookmarked callback).
    b.goto(&format!(
        "/api/auth/oidc/{ID}/callback?state=from-a-bookmark&code=old"
    ))
    .await;
    b.wait_for_path("/login?sso_error=expired").await;
    assert_eq!(b.text("#sso-error").await, banner("expired"));
    b.screenshot("login-sso-expired").await;

    // An ID token that fails verification (a wrong nonce): the IdP still knows Bob.
    s.idp.set_tamper(Tamper::Nonce).await;
    b.goto("/login").await;
    b.click(&button).await;
    through_idp(&s, BOB).await;
    b.wait_for_path("/login?sso_error=failed").await;
    s.idp.set_tamper(Tamper::None).await;
    assert_eq!(b.text("#sso-error").await, banner("failed"));
    b.screenshot("login-sso-failed").await;

    // A provider that is not configured (an old bookmark of a removed provider).
    b.goto("/api/auth/oidc/gone/login").await;
    b.wait_for_path("/login?sso_error=unavailable").await;
    assert_eq!(b.text("#sso-error").await, banner("unavailable"));
    b.screenshot("login-sso-unavailable").await;

    // None of it signed anyone in.
    b.goto("/").await;
    b.wait_for_path("/login?next=%2F").await;
    assert!(!b.exists("#sso-error").await, "no banner without a code");
}

/// The administration pages the wizard test does not reach: a failed Test discovery, the
/// unlink confirmation and the "Revert to previous" confirmation.
async fn browser_sso_admin_screens(db: Db) {
    let Some(s) = start(db, Options::for_db(db), None, |_| {}).await else {
        return;
    };
    let b = &s.b;
    b.goto("/login?next=/admin/sso/new").await;
    sign_in(b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/sso/new").await;

    // The same IdP under another spelling of its address is another issuer.
    let other = s.idp.issuer.replace("127.0.0.1", "localhost");
    fill_connection(b, &other, CLIENT_SECRET).await;
    mark_page(b).await;
    b.click("#test-discovery").await;
    wait_for_discovery(b, "Issuer mismatch").await;
    assert_not_reloaded(b).await;
    let message = b.text("#discovery-result").await;
    assert!(
        message.contains(&format!("\"{}\"", s.idp.issuer))
            && message.contains(&format!("\"{other}\"")),
        "{message}"
    );
    assert!(
        b.find("#discovery-result")
            .await
            .attr("class")
            .await
            .unwrap()
            .is_some_and(|c| c.contains("alert-error"))
    );
    screenshot_with_fixed_ports(&s, "sso-discovery-failed").await;

    // Fixed and saved; then Alice's identity linked to the admin by hand.
    b.fill("#issuer", &s.idp.issuer).await;
    b.click("#save-provider").await;
    let links = format!("/admin/sso/providers/{ID}/links");
    b.wait_for_path(&format!("{links}?notice=created")).await;
    b.fill("#subject", ALICE.sub).await;
    b.fill("#link-username", ADMIN).await;
    b.click("#link-manually").await;
    b.wait_for_path(&format!("{links}?notice=linked")).await;
    assert_eq!(b.text("#notice").await, "Identity linked.");

    // Unlink asks first, on its own page.
    b.click("#links-table tbody tr a[id^=unlink-]").await;
    let path = b.path().await;
    assert!(
        path.starts_with("/admin/sso/identities/") && path.ends_with("/unlink"),
        "{path}"
    );
    assert_eq!(b.text("h1").await, "Unlink identity");
    let question = b.text(".card p").await;
    assert!(
        question.starts_with(&format!(
            "Unlink the {LABEL} identity {} from {ADMIN}?",
            ALICE.sub
        )),
        "{question}"
    );
    b.screenshot("sso-unlink").await;
    b.click("#confirm").await;
    b.wait_for_path(&format!("{links}?notice=unlinked")).await;
    assert!(b.exists("#no-links").await);

    // A second save keeps the first as "previous": Revert to previous asks, then restores.
    b.goto(&format!("/admin/sso/providers/{ID}")).await;
    assert!(!b.exists("#revert").await, "nothing to revert to yet");
    b.fill("#label", "Renamed by mistake").await;
    b.click("#save-provider").await;
    b.wait_for_path(&format!("{links}?notice=saved")).await;
    b.goto(&format!("/admin/sso/providers/{ID}")).await;
    assert_eq!(b.value("#label").await, "Renamed by mistake");
    b.click("#revert").await;
    b.wait_for_path(&format!("/admin/sso/providers/{ID}/revert"))
        .await;
    assert_eq!(b.text("h1").await, "Revert to previous");
    let question = b.text(".card p").await;
    assert!(
        question.starts_with("Restore the connection settings of Renamed by mistake"),
        "{question}"
    );
    b.screenshot("sso-revert").await;
    b.click("#confirm").await;
    b.wait_for_path("/admin/sso?notice=reverted").await;
    let notice = b.text("#notice").await;
    assert!(
        notice.starts_with("The previous connection settings are back."),
        "{notice}"
    );
    assert!(b.text(&format!("#provider-{ID}")).await.contains(LABEL));
    assert!(
        !checked(b, "#sso_enabled").await,
        "SSO login is off after a revert"
    );
}

/// `HALLPASS_SSO_DISABLE_OVERRIDE`: the stored settings say SSO only, the override wins, and
/// `/admin/sso` says why.
async fn browser_sso_override_banner(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            // The overview does not talk to the provider: an address of the documentation.
            c.sso
                .providers
                .push(env_provider("https://id.example.com", Policy::Link));
            c.sso.disable_override = true;
        },
        true,
    )
    .await
    else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    sql(
        &app,
        "UPDATE settings SET sso_enabled = 1, local_login_enabled = 0",
    )
    .await;
    b.goto("/login?next=/admin/sso").await;
    assert!(!b.exists("#sso-buttons").await, "SSO is forced off");
    sign_in(&b, ADMIN, ADMIN_PASSWORD).await;
    b.wait_for_path("/admin/sso").await;
    let banner = b.text("#override-banner").await;
    assert!(
        banner.starts_with("Break-glass override is on."),
        "{banner}"
    );
    assert!(
        checked(&b, "#sso_enabled").await,
        "the stored setting shows"
    );
    assert!(!checked(&b, "#local_login_enabled").await);
    let row = b.text(&format!("#provider-{ID}")).await;
    assert!(row.contains("environment (read-only)"), "{row}");
    b.screenshot("sso-override").await;
}
