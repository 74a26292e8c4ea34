//! Signing up from an invite with a passkey, in a real headless Chromium with its WebAuthn
//! virtual authenticator: the invite page's "Sign up with a passkey" makes a passwordless
//! account that lands signed in, signs out and signs in again with the passkey alone, and
//! cannot remove that passkey (its only way in); an invite asking for approval lands on the
//! "Awaiting approval" page. Then the attacks that need a real answer: a ceremony finished
//! for another invite or username, the link used, revoked or expired meanwhile, the username
//! taken meanwhile, a replayed answer. The SQLite run writes the `invite-signup-passkey`
//! screenshots (light, dark, phone).

use serde_json::{Value, json};

use crate::browser_passkeys::{add_authenticator, passkey_sign_in, sign_out};
use crate::invite_passkeys::{app_at, invite, invite_state, users_count};
use crate::support::browser::{Browser, Options};
use crate::support::{Db, TestApp, add_user, audit_events, sql, user};

both_databases!(browser_invite_passkey_sign_up);

/// The page's CSRF token, for the scripts below.
const CODEC: &str = "const csrf = document.querySelector('input[name=csrf_token]').value;";

/// Runs `body` (an async function body using `CODEC`) in the page; returns its result.
async fn run(b: &Browser, body: &str) -> Value {
    b.js(&format!(
        "window.__r = null; {CODEC} (async () => {{ {body} }})().then(v => {{ window.__r = v; }}, e => {{ window.__r = {{ error: String(e) }}; }}); return null;"
    ))
    .await;
    b.wait_until("the script's answer", "return window.__r !== null;")
        .await;
    b.js("return window.__r;").await
}

/// Empties the virtual authenticator: it holds three discoverable credentials at most.
async fn forget(b: &Browser, auth: &str) {
    b.webdriver(
        "DELETE",
        &format!("/webauthn/authenticator/{auth}/credentials"),
        None,
    )
    .await;
}

/// Presses "Sign up with a passkey" on invite `path` for `username` and keeps the
/// authenticator's answer instead of sending it (the page's script, its submission caught).
async fn answer(b: &Browser, auth: &str, path: &str, username: &str) -> String {
    forget(b, auth).await;
    b.goto(path).await;
    b.fill("#invite-form #username", username).await;
    b.fill("#passkey_name", "Phone").await;
    b.js(
        "window.__r = null; HTMLFormElement.prototype.requestSubmit = function () { \
          window.__r = this.elements.namedItem('credential').value; }; return null;",
    )
    .await;
    b.click("#create-with-passkey").await;
    let status = "document.querySelector('#passkey-signup .passkey-status').textContent";
    b.wait_until(
        "the authenticator's answer",
        &format!("return window.__r !== null || !{status}.startsWith('Waiting');"),
    )
    .await;
    let r = b.js("return window.__r;").await;
    let why = b.js(&format!("return {status};")).await;
    r.as_str()
        .unwrap_or_else(|| panic!("no answer for {username}: {why}"))
        .to_owned()
}

/// Sends `answer` for `username` to invite `path` as the page's form would; returns the
/// status, the path the browser ended on and the page.
async fn send(b: &Browser, path: &str, username: &str, answer: &str) -> (u64, String, String) {
    let r = run(
        b,
        &format!(
            "const r = await fetch({url}, {{ method: 'POST', body: new URLSearchParams({{ csrf_token: csrf, \
               username: {user}, email: '', passkey_name: 'Phone', credential: {answer} }}) }}); \
             return {{ status: r.status, path: new URL(r.url).pathname, text: await r.text() }};",
            url = json!(format!("{path}/passkey")),
            user = json!(username),
            answer = json!(answer),
        ),
    )
    .await;
    (
        r["status"].as_u64().unwrap_or_else(|| panic!("{r}")),
        r["path"].as_str().unwrap().to_owned(),
        r["text"].as_str().unwrap().to_owned(),
    )
}

async fn passkey_count(app: &TestApp) -> i64 {
    use diesel::{QueryableByName, RunQueryDsl, sql_types};
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = sql_types::BigInt)]
        n: i64,
    }
    app.state
        .db
        .run(|c| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM passkeys")
                .get_result::<Count>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
        .n
}

async fn browser_invite_passkey_sign_up(db: Db) {
    let Some(app) = app_at(db, true).await else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    let b = b.at_host("localhost");
    let auth = add_authenticator(&b).await;

    // The invitee opens the link: with the script, the passkey way shows and the
    // "needs JavaScript" note hides.
    let (path, id) = invite(&app, false).await;
    b.goto(&path).await;
    b.wait_until(
        "the passkey way",
        "return !document.getElementById('passkey-signup').hidden \
         && document.getElementById('passkey-nojs').hidden;",
    )
    .await;
    b.fill("#invite-form #username", "pia").await;
    b.fill("#passkey_name", "Laptop").await;
    b.js("document.activeElement.blur(); window.scrollTo(0, 0); return null;")
        .await;
    b.screenshot("invite-signup-passkey").await;
    b.click("#create-with-passkey").await;
    b.wait_for_path("/").await;
    let pia = user(&app, "pia").await;
    assert!(pia.password_hash.is_none(), "no password: the passkey only");
    assert_eq!(pia.status, hallpass::domain::Status::Active);
    let keys = app
        .state
        .db
        .run(move |c| hallpass::db::passkeys::for_user(c, pia.id))
        .await
        .unwrap();
    assert_eq!(
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["Laptop"]
    );
    assert_eq!(invite_state(&app, id).await, "used");
    let accepted = audit_events(&app, "invite.accept").await;
    assert!(
        accepted[0]
            .detail
            .as_deref()
            .unwrap()
            .ends_with("with=passkey")
    );
    let added = audit_events(&app, "passkey.add").await;
    assert_eq!(added[0].target.as_deref(), Some("pia"));
    assert_eq!(added[0].actor, "pia");

    // Signed out, pia signs in again with the passkey alone.
    sign_out(&b).await;
    passkey_sign_in(&b).await;
    b.wait_for_path("/account").await;
    // Her only passkey is her only way in: removing it is refused.
    b.goto("/account/passkeys").await;
    b.click(&format!("#remove-{}", keys[0].id)).await;
    b.find("#passkey-error").await;
    assert!(
        b.text("#passkey-error")
            .await
            .contains("last way to sign in")
    );
    assert_eq!(passkey_count(&app).await, 1);
    sign_out(&b).await;

    // An invite that asks for approval: the account waits, signed in to see so.
    forget(&b, &auth).await;
    let (path, _) = invite(&app, true).await;
    b.goto(&path).await;
    b.fill("#invite-form #username", "pat").await;
    b.fill("#passkey_name", "Phone").await;
    b.click("#create-with-passkey").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("#account-status h1").await, "Awaiting approval");
    assert_eq!(
        user(&app, "pat").await.status,
        hallpass::domain::Status::Pending
    );
    sign_out(&b).await;

    attacks(&app, &b, &auth).await;
}

/// Every refusal leaves no account and no passkey behind, and the link as it was.
async fn attacks(app: &TestApp, b: &Browser, auth: &str) {
    let (a, a_id) = invite(app, false).await;
    let (other, other_id) = invite(app, false).await;
    b.goto(&a).await;
    let (users, keys) = (users_count(app).await, passkey_count(app).await);

    // A ceremony started for one invite, finished for another; for one username, finished
    // for another.
    let ans = answer(b, auth, &a, "ann").await;
    let (status, _, page) = send(b, &other, "ann", &ans).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("id=\"passkey-error\""));
    let ans = answer(b, auth, &a, "ann").await;
    let (status, _, _) = send(b, &a, "bea", &ans).await;
    assert_eq!(status, 401);
    assert_eq!(
        (users_count(app).await, passkey_count(app).await),
        (users, keys)
    );
    assert_eq!(invite_state(app, a_id).await, "open");
    assert_eq!(invite_state(app, other_id).await, "open");

    // The link used by someone else between the options and the answer: one account only.
    let ans = answer(b, auth, &a, "ann").await;
    let c = app.client();
    let html = c
        .get(app.url(&a))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = crate::support::csrf_in(&html).unwrap();
    let r = c
        .post(app.url(&a))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "quick"),
            ("password", "a long invited passphrase"),
            ("password_confirm", "a long invited passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (status, _, page) = send(b, &a, "ann", &ans).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("used already"));
    assert_eq!(
        (users_count(app).await, passkey_count(app).await),
        (users + 1, keys)
    );

    // Revoked, or expired, meanwhile.
    b.goto(&other).await;
    let ans = answer(b, auth, &other, "cy").await;
    hallpass::service::invites::revoke(
        &app.state.db,
        hallpass::service::Actor::system("test"),
        other_id,
    )
    .await
    .unwrap();
    let (status, _, page) = send(b, &other, "cy", &ans).await;
    assert_eq!(status, 410);
    assert!(page.contains("revoked"));
    let (late, late_id) = invite(app, false).await;
    let ans = answer(b, auth, &late, "di").await;
    sql(
        app,
        format!("UPDATE invites SET expires_at = 1 WHERE id = {late_id}"),
    )
    .await;
    let (status, _, page) = send(b, &late, "di", &ans).await;
    assert_eq!(status, 410);
    assert!(page.contains("expired"));

    // The username taken meanwhile: the message by the field, the link still open.
    let (e, e_id) = invite(app, false).await;
    let ans = answer(b, auth, &e, "eve").await;
    add_user(app, "eve", "user").await;
    let (status, _, page) = send(b, &e, "eve", &ans).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("id=\"username-error\""));
    assert_eq!(invite_state(app, e_id).await, "open");
    assert_eq!(
        (users_count(app).await, passkey_count(app).await),
        (users + 2, keys)
    );

    // A replayed answer: against a newer challenge it is refused; the newer one signs up;
    // sent again (another invite, or the used one), it makes nothing.
    let old = answer(b, auth, &e, "ed").await;
    let _newer = answer(b, auth, &e, "ed").await;
    let (status, _, _) = send(b, &e, "ed", &old).await;
    assert_eq!(status, 401);
    let new_again = answer(b, auth, &e, "ed").await;
    let (status, at, page) = send(b, &e, "ed", &new_again).await;
    assert_eq!((status, at.as_str()), (200, "/"), "{page}");
    assert_eq!(invite_state(app, e_id).await, "used");
    assert_eq!(
        (users_count(app).await, passkey_count(app).await),
        (users + 3, keys + 1)
    );
    b.goto("/").await;
    sign_out(b).await;
    let (f, f_id) = invite(app, false).await;
    b.goto(&f).await;
    let (status, _, _) = send(b, &f, "ed2", &new_again).await;
    assert_eq!(status, 401, "no ceremony for it");
    let (status, _, _) = send(b, &e, "ed", &new_again).await;
    assert_eq!(status, 410);
    assert_eq!(invite_state(app, f_id).await, "open");
    assert_eq!(
        (users_count(app).await, passkey_count(app).await),
        (users + 3, keys + 1)
    );
    assert_eq!(
        user(app, "ed").await.password_hash,
        None,
        "the replay changed nothing"
    );
}
