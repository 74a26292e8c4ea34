//! Signing up from an invite with a passkey instead of a password (issue 15, point 3): the
//! refusals a client without an authenticator can reach — field errors before any passkey is
//! made, dead links, answers that are missing, malformed or not started here, passkeys off,
//! a signed-in browser — on both databases. The real ceremonies (and the attacks that need a
//! real answer) are in `browser_invite_passkeys`.

use hallpass::domain::Role;
use hallpass::domain::invite::NewInvite;
use serde_json::Value;

use crate::support::{Db, TestApp, add_user, audit_events, csrf_in, free_port, sql};

both_databases!(
    passkey_sign_up_refusals_without_an_authenticator,
    without_a_usable_public_url_the_invite_offers_the_password_only,
    a_passkey_is_a_way_in_when_single_sign_on_goes,
);

/// An instance whose `server.public_url` is `http://localhost:PORT` (passkeys on), or none.
pub async fn app_at(db: Db, localhost: bool) -> Option<TestApp> {
    let port = free_port();
    TestApp::start(
        db,
        |c| {
            c.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
            if localhost {
                c.server.public_url = Some(format!("http://localhost:{port}").parse().unwrap());
            }
        },
        true,
    )
    .await
}

/// Makes an invite (role `user`, 7 days) through the service; returns its path and id.
pub async fn invite(app: &TestApp, needs_approval: bool) -> (String, i64) {
    let created = hallpass::service::invites::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        NewInvite {
            email: None,
            username: None,
            role: Role::User,
            groups: Vec::new(),
            expires_in_days: 7,
            needs_approval,
        },
    )
    .await
    .unwrap();
    (format!("/invite/{}", created.token), created.invite.id)
}

/// The state of invite `id` as the service reads it now.
pub async fn invite_state(app: &TestApp, id: i64) -> &'static str {
    let invite = hallpass::service::invites::get(&app.state.db, id)
        .await
        .unwrap();
    invite.state(hallpass::service::invites::now()).as_str()
}

pub async fn users_count(app: &TestApp) -> i64 {
    app.state.db.run(hallpass::db::users::count).await.unwrap()
}

/// Asks for the options with these fields; returns the status and the JSON body.
async fn options(
    app: &TestApp,
    c: &reqwest::Client,
    (path, token): (&str, &str),
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![("csrf_token", token)];
    form.extend_from_slice(fields);
    let r = c
        .post(app.url(&format!("{path}/passkey/options")))
        .header("X-CSRF-Token", token)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Posts the passkey form with `credential`; returns the status and the page.
async fn finish(
    app: &TestApp,
    c: &reqwest::Client,
    (path, token): (&str, &str),
    username: &str,
    credential: &str,
) -> (u16, String) {
    let r = c
        .post(app.url(&format!("{path}/passkey")))
        .form(&[
            ("csrf_token", token),
            ("username", username),
            ("email", ""),
            ("passkey_name", "Phone"),
            ("credential", credential),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn page(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    c.get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn fields_of(body: &Value) -> Vec<String> {
    body["error"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn passkey_sign_up_refusals_without_an_authenticator(db: Db) {
    let Some(app) = app_at(db, true).await else {
        return;
    };
    let (path, id) = invite(&app, false).await;
    let c = app.client();
    let html = page(&app, &c, &path).await;
    // The passkey way is there for the script to show; the note says it needs JavaScript.
    assert!(html.contains(r#"id="passkey-signup" hidden"#), "{html}");
    assert!(html.contains(&format!(r#"data-passkey-signup="{path}/passkey/options""#)));
    assert!(html.contains(r#"id="passkey-nojs""#));
    assert!(html.contains("/static/passkeys.js"));
    assert!(!html.contains("passkeys-unavailable"));
    let token = csrf_in(&html).unwrap();
    let at = (path.as_str(), token.as_str());

    // Field errors, by field, before any authenticator is asked (no ceremony kept).
    let (status, body) = options(
        &app,
        &c,
        at,
        &[("username", "x"), ("email", "nope"), ("passkey_name", " ")],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(fields_of(&body), ["username", "email", "passkey_name"]);
    // A username someone has: refused by the field, before the authenticator is asked.
    let taken = [("username", "admin"), ("passkey_name", "Phone")];
    let (status, body) = options(&app, &c, at, &taken).await;
    assert_eq!((status, fields_of(&body)), (422, vec!["username".into()]));

    // The options: a discoverable credential with user verification, for the username asked
    // for, with a fresh random user handle each time.
    let fine = [("username", "newbie"), ("passkey_name", "Phone")];
    let (status, first) = options(&app, &c, at, &fine).await;
    assert_eq!(status, 200, "{first}");
    let pk = &first["publicKey"];
    assert_eq!(pk["user"]["name"], "newbie");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["excludeCredentials"].as_array().map_or(0, Vec::len), 0);
    let (_, second) = options(&app, &c, at, &fine).await;
    assert_ne!(pk["user"]["id"], second["publicKey"]["user"]["id"]);
    assert_ne!(pk["challenge"], second["publicKey"]["challenge"]);

    // Answers that prove nothing make nothing: none at all (the script did not run), a
    // malformed one, one with no ceremony left (the first attempt used it up).
    let before = users_count(&app).await;
    let (status, html) = finish(&app, &c, at, "newbie", "").await;
    assert_eq!(status, 422);
    assert!(html.contains("needs JavaScript"), "{html}");
    assert!(html.contains(r#"value="newbie""#), "the input is kept");
    options(&app, &c, at, &fine).await;
    let (status, html) = finish(&app, &c, at, "newbie", r#"{"id":"x"}"#).await;
    assert_eq!(status, 401);
    assert!(html.contains(r#"id="passkey-error""#), "{html}");
    let (status, _) = finish(&app, &c, at, "newbie", r#"{"id":"x"}"#).await;
    assert_eq!(status, 401);
    assert_eq!(users_count(&app).await, before);
    assert_eq!(invite_state(&app, id).await, "open");
    assert!(audit_events(&app, "invite.accept").await.is_empty());

    // Dead links: unknown (404) and revoked (410), at the options and at the finish.
    let unknown = format!("/invite/hpi_{}", "A".repeat(43));
    let (status, body) = options(&app, &c, (&unknown, &token), &fine).await;
    assert_eq!(status, 404, "{body}");
    sql(
        &app,
        format!("UPDATE invites SET revoked_at = 1 WHERE id = {id}"),
    )
    .await;
    let (status, body) = options(&app, &c, at, &fine).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("INVITE_REVOKED")),
        "{body}"
    );
    let (status, html) = finish(&app, &c, at, "newbie", r#"{"id":"x"}"#).await;
    assert_eq!(status, 410);
    assert!(html.contains("revoked"), "{html}");

    // Someone signed in: no ceremony, no account (the password form's rule).
    let (path2, _) = invite(&app, false).await;
    let admin = app.admin_client().await;
    let token = csrf_in(&page(&app, &admin, &path2).await).unwrap();
    let (status, body) = options(&app, &admin, (&path2, &token), &fine).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("SIGNED_IN"))
    );
    let r = admin
        .post(app.url(&format!("{path2}/passkey")))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "newbie"),
            ("credential", "{}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], path2.as_str());
    assert_eq!(users_count(&app).await, before);
}

async fn without_a_usable_public_url_the_invite_offers_the_password_only(db: Db) {
    let Some(app) = app_at(db, false).await else {
        return;
    };
    let (path, id) = invite(&app, false).await;
    let c = app.client();
    let html = page(&app, &c, &path).await;
    // The account page's sentence, and no passkey button or script.
    assert!(html.contains(r#"id="passkeys-unavailable""#), "{html}");
    assert!(html.contains("server.public_url"), "{html}");
    assert!(!html.contains("passkey-signup"));
    assert!(!html.contains("passkeys.js"));
    assert!(html.contains(r#"id="create-with-password""#));
    let token = csrf_in(&html).unwrap();
    let fine = [("username", "newbie"), ("passkey_name", "Phone")];
    let (status, body) = options(&app, &c, (&path, &token), &fine).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("PASSKEYS_UNAVAILABLE")),
        "{body}"
    );
    let (status, _) = finish(&app, &c, (&path, &token), "newbie", r#"{"id":"x"}"#).await;
    assert_eq!(status, 409, "passkeys are off: nothing is verified");
    assert_eq!(invite_state(&app, id).await, "open");
}

/// A passwordless account (as an invite with a passkey makes) that also linked a single
/// sign-on identity: unlinking the identity, or deleting its provider, is refused while the
/// identity is its only way in, and allowed once it has a passkey.
async fn a_passkey_is_a_way_in_when_single_sign_on_goes(db: Db) {
    use hallpass::service::{Actor, Refusal, ServiceError};
    let Some(app) = app_at(db, true).await else {
        return;
    };
    let sealed = hallpass::service::sso::seal(&app.state.secret, "client secret").unwrap();
    sql(
        &app,
        format!(
            "INSERT INTO oidc_providers (id, label, issuer, client_id, client_secret, scopes, \
             subject_claim, username_claim, email_claim, policy, enabled, previous, created_at, \
             updated_at, groups_claim) VALUES ('corp', 'Corp', 'https://idp.example.com', \
             'hallpass', '{sealed}', 'openid email', 'sub', 'preferred_username', 'email', \
             'link', 1, NULL, 1, 2, NULL)"
        ),
    )
    .await;
    let mut ids = Vec::new();
    for name in ["pia", "pat"] {
        let id = add_user(&app, name, "user").await;
        sql(
            &app,
            format!("UPDATE users SET password_hash = NULL WHERE id = {id}"),
        )
        .await;
        sql(
            &app,
            format!(
                "INSERT INTO identities (user_id, provider, issuer, subject, email, display_name, \
                 created_at, last_login_at) VALUES ({id}, 'corp', 'https://idp.example.com', \
                 'sub-{name}', NULL, NULL, 5, NULL)"
            ),
        )
        .await;
        ids.push(id);
    }
    let pia = ids[0];
    let link = app
        .state
        .db
        .run(move |c| hallpass::db::identities::for_user(c, pia))
        .await
        .unwrap()[0]
        .id;
    let (db_, sso) = (&app.state.db, &app.state.config.sso);
    let unlink =
        || hallpass::service::sso::identities::unlink(db_, sso, &[], Actor::system("test"), link);
    let delete =
        || hallpass::service::sso::providers::delete(db_, sso, Actor::system("test"), "corp");
    let last = |r: ServiceError| matches!(r, ServiceError::Refused(Refusal::LastSignInMethod(_)));
    assert!(last(unlink().await.unwrap_err()));
    let passkey = |user: i64, cred: &str| {
        format!(
            "INSERT INTO passkeys (user_id, name, credential_id, user_handle, passkey, created_at) \
             VALUES ({user}, 'Phone', '{cred}', '0f8fad5b-d9cb-469f-a165-70867728950e', '{{}}', 1)"
        )
    };
    sql(&app, passkey(pia, "cred-pia")).await;
    unlink().await.unwrap();
    // The provider: pat signs in only through it, until pat has a passkey too.
    assert!(last(delete().await.unwrap_err()));
    sql(&app, passkey(ids[1], "cred-pat")).await;
    assert_eq!(delete().await.unwrap(), 1);
}
