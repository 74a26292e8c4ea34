//! Passkeys over plain HTTP (the ceremony itself runs in `browser_passkeys`): the relying
//! party from `server.public_url` and the message when it cannot be one, the options the
//! browser gets, malformed and replayed answers (a 4xx page, never a 500), the JSON API's
//! list, rename and remove, and the last way in.

use serde_json::{Value, json};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, api_login, audit_events,
    csrf_in, sql,
};

both_databases!(
    passkeys_need_a_usable_public_url,
    passkey_options_and_refused_answers,
    passkeys_api_and_the_last_way_in,
    an_admins_reset_removes_passkeys_but_not_the_last_way_in
);

async fn app_at(db: Db, public_url: Option<&str>) -> Option<TestApp> {
    let url = public_url.map(|u| u.parse().unwrap());
    TestApp::start(db, |c| c.server.public_url = url, true).await
}

/// `POST` an `…/options` route as the script does: the page's token in `X-CSRF-Token`.
async fn options(app: &TestApp, c: &reqwest::Client, page: &str, path: &str) -> (u16, Value) {
    let token = app.csrf(c, page).await;
    let r = c
        .post(app.url(path))
        .header("X-CSRF-Token", token)
        .header("Origin", app.url(""))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn passkeys_need_a_usable_public_url(db: Db) {
    for (public_url, says) in [
        (None, "not set"),
        (Some("http://auth.example.com"), "https"),
        (Some("https://10.1.2.3"), "IP address"),
    ] {
        let Some(app) = app_at(db, public_url).await else {
            return;
        };
        let admin = app.admin_client().await;
        let page = admin
            .get(app.url("/account/passkeys"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"passkeys-unavailable\""), "{page}");
        assert!(page.contains(says), "{public_url:?}: {page}");
        assert!(
            !page.contains("passkeys.js"),
            "no script where it cannot work"
        );
        let (status, body) = options(
            &app,
            &admin,
            "/account/passkeys",
            "/account/passkeys/options",
        )
        .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"]["code"], "PASSKEYS_UNAVAILABLE");
        assert!(body["error"]["message"].as_str().unwrap().contains(says));
        let login = app
            .client()
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !login.contains("passkey-form"),
            "no passkey button: {login}"
        );
    }
}

async fn passkey_options_and_refused_answers(db: Db) {
    let Some(app) = app_at(db, Some("https://auth.example.com")).await else {
        return;
    };
    // The sign-in page offers it (hidden until the script finds WebAuthn), the script
    // loaded from this page only.
    let c = app.client();
    let login = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("id=\"passkey-form\" hidden"), "{login}");
    assert!(login.contains("/static/passkeys.js"));
    let script = c.get(app.url("/static/passkeys.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);

    let (status, body) = options(&app, &c, "/login", "/login/passkey/options").await;
    assert_eq!(status, 200, "{body}");
    let pk = &body["publicKey"];
    assert_eq!(pk["rpId"], "auth.example.com");
    assert_eq!(pk["userVerification"], "required");
    assert!(
        pk["challenge"].as_str().unwrap().len() >= 43,
        "32 random bytes"
    );
    assert!(
        pk.get("allowCredentials")
            .is_none_or(|a| a.as_array().unwrap().is_empty())
    );

    // Answers that are not passkeys: the page again with the message, 401, never a 500.
    let token = csrf_in(&login).unwrap();
    for answer in [
        "not json",
        "{}",
        r#"{"id":"x","rawId":"eA","type":"public-key","response":{"authenticatorData":"AA","clientDataJSON":"AA","signature":"AA","userHandle":null}}"#,
    ] {
        let r = c
            .post(app.url("/login/passkey"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("credential", answer),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{answer}");
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"login-error\""), "{page}");
        assert!(page.contains("not accepted"));
    }
    let failed = audit_events(&app, "login.passkey").await;
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|e| e.outcome == "failure"));
    // No answer at all (the script did not run): back to the sign-in page.
    let r = c
        .post(app.url("/login/passkey"))
        .form(&[("csrf_token", token.as_str()), ("credential", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Adding one: the options ask for a discoverable credential with user verification,
    // under a random user handle (not the account's id).
    let admin = app.admin_client().await;
    let (status, body) = options(
        &app,
        &admin,
        "/account/passkeys",
        "/account/passkeys/options",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let pk = &body["publicKey"];
    assert_eq!(pk["rp"]["id"], "auth.example.com");
    assert_eq!(pk["user"]["name"], ADMIN);
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(
        pk["user"]["id"].as_str().unwrap().len(),
        22,
        "16 bytes, base64url"
    );
    // A bad name is refused by the field; no answer, the same.
    let token = app.csrf(&admin, "/account/passkeys").await;
    let r = admin
        .post(app.url("/account/passkeys"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", "x"),
            ("credential", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("needs JavaScript"));
    let r = admin
        .post(app.url("/account/passkeys"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("name", " "),
            ("credential", "{}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Give the passkey a name"));

    // The second step's options need a second step in progress.
    let (status, body) = options(
        &app,
        &app.client(),
        "/login",
        "/login/two-factor/passkey/options",
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

/// Stores a passkey row for `user_id` as the service would (the credential is opaque to
/// everything but sign-in).
async fn stored_passkey(app: &TestApp, user_id: i64, name: &str, cred: &str) {
    sql(
        app,
        format!(
            "INSERT INTO passkeys (user_id, name, credential_id, user_handle, passkey, created_at) \
             VALUES ({user_id}, '{name}', '{cred}', '0f8fad5b-d9cb-469f-a165-70867728950e', '{{}}', 1764000000)"
        ),
    )
    .await;
}

async fn passkeys_api_and_the_last_way_in(db: Db) {
    let Some(app) = app_at(db, Some("https://auth.example.com")).await else {
        return;
    };
    let bob = add_user(&app, "bob", "user").await;
    let (c, token) = api_login(&app, "bob", MEMBER_PASSWORD).await;
    let list = |c: reqwest::Client| {
        let url = app.url("/api/me/passkeys");
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(list(c.clone()).await, json!({ "passkeys": [] }));
    stored_passkey(&app, bob, "Phone", "cGhvbmU").await;
    stored_passkey(&app, bob, "Key", "a2V5").await;
    let body = list(c.clone()).await;
    let keys = body["passkeys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["name"], "Phone");
    assert_eq!(keys[0]["last_used_at"], Value::Null);
    assert!(keys[0]["created_at"].as_str().unwrap().ends_with('Z'));
    let (phone, key) = (
        keys[0]["id"].as_i64().unwrap(),
        keys[1]["id"].as_i64().unwrap(),
    );

    let send = |method: reqwest::Method, path: String, body: Option<Value>| {
        let (c, token, url) = (c.clone(), token.clone(), app.url(&path));
        async move {
            let req = c.request(method, url).header("X-CSRF-Token", token);
            let req = match body {
                Some(b) => req.json(&b),
                None => req,
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let patch = reqwest::Method::PATCH;
    let (s, _) = send(
        patch.clone(),
        format!("/api/me/passkeys/{phone}"),
        Some(json!({"name": "Pixel"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = send(
        patch.clone(),
        format!("/api/me/passkeys/{phone}"),
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("VALIDATION_FAILED"))
    );
    let (s, b) = send(
        patch.clone(),
        "/api/me/passkeys/999999".into(),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    // Someone else's passkey is no passkey of yours.
    let admin_id = crate::support::user(&app, ADMIN).await.id;
    stored_passkey(&app, admin_id, "Admin key", "YWRtaW4").await;
    let admins = app
        .state
        .db
        .run(move |c| hallpass::db::passkeys::for_user(c, admin_id))
        .await
        .unwrap()[0]
        .id;
    let (s, _) = send(
        reqwest::Method::DELETE,
        format!("/api/me/passkeys/{admins}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(list(c.clone()).await["passkeys"][0]["name"], "Pixel");
    assert_eq!(audit_events(&app, "passkey.rename").await.len(), 1);

    // Without a password, the last passkey is the last way in: refused; the one before it
    // may go.
    sql(
        &app,
        "UPDATE users SET password_hash = NULL WHERE username_key = 'bob'",
    )
    .await;
    let (s, _) = send(
        reqwest::Method::DELETE,
        format!("/api/me/passkeys/{key}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, b) = send(
        reqwest::Method::DELETE,
        format!("/api/me/passkeys/{phone}"),
        None,
    )
    .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("LAST_SIGN_IN_METHOD")),
        "{b}"
    );
    assert_eq!(
        list(c.clone()).await["passkeys"].as_array().unwrap().len(),
        1
    );
    assert_eq!(audit_events(&app, "passkey.remove").await.len(), 1);

    // A passkey makes the password's second step offer it (and only it: no app).
    let admin = app.client();
    let r = app.login(&admin, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.headers()["location"], "/login/two-factor");
    let page = admin
        .get(app.url("/login/two-factor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"passkey-form\""), "{page}");
    assert!(!page.contains("id=\"code-form\""));
    // A posted form without an answer (no JavaScript) comes back to the step.
    let token = csrf_in(&page).unwrap();
    let r = admin
        .post(app.url("/login/two-factor/passkey"))
        .form(&[("csrf_token", token.as_str()), ("credential", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/login/two-factor");
    // A wrong answer: the step again with the message, counted like a wrong code.
    let r = admin
        .post(app.url("/login/two-factor/passkey"))
        .form(&[("csrf_token", token.as_str()), ("credential", "{}")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("not accepted"));
    let step = audit_events(&app, "login.second_factor").await;
    assert_eq!(
        (step[0].outcome.as_str(), step[0].detail.as_deref()),
        ("failure", Some("passkey"))
    );
}

/// How many passkeys `user_id` has.
async fn passkeys_of(app: &TestApp, user_id: i64) -> i64 {
    app.state
        .db
        .run(move |c| hallpass::db::passkeys::count(c, user_id))
        .await
        .unwrap()
}

/// A lost phone is usually a lost passkey: an admin's (or the recovery CLI's) reset of
/// someone's second factors removes their passkeys too, and ends their sessions — but never
/// the last way into an account that has no password and no linked identity.
async fn an_admins_reset_removes_passkeys_but_not_the_last_way_in(db: Db) {
    let Some(app) = app_at(db, None).await else {
        return;
    };
    // Alice has a password and two passkeys, no authenticator app.
    let alice = add_user(&app, "alice", "user").await;
    let (alice_c, _) = api_login(&app, "alice", MEMBER_PASSWORD).await;
    stored_passkey(&app, alice, "Phone", "YWxpY2UtcGhvbmU").await;
    stored_passkey(&app, alice, "Key", "YWxpY2Uta2V5").await;
    let me = alice_c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "signed in before the reset");
    let admin = app.admin_client().await;
    let page_of = |id: i64| {
        let (admin, url) = (
            admin.clone(),
            app.url(&format!("/admin/users/{id}/two-factor")),
        );
        async move { admin.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let page = page_of(alice).await;
    assert!(page.contains("badge-active\">On"), "{page}");
    assert!(page.contains("one of 2 passkeys"), "{page}");
    let reset = |id: i64, token: String| {
        let (admin, url) = (
            admin.clone(),
            app.url(&format!("/admin/users/{id}/two-factor/reset")),
        );
        async move {
            admin
                .post(url)
                .form(&[("csrf_token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = reset(alice, csrf_in(&page).unwrap()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(passkeys_of(&app, alice).await, 0, "her passkeys are gone");
    let me = alice_c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 401, "her sessions ended");
    let page = page_of(alice).await;
    assert!(page.contains("has no second factor"), "{page}");

    // Bob signs in with his passkey only: the reset would lock him out.
    let bob = add_user(&app, "bob", "user").await;
    sql(
        &app,
        format!("UPDATE users SET password_hash = NULL WHERE id = {bob}"),
    )
    .await;
    stored_passkey(&app, bob, "Phone", "Ym9iLXBob25l").await;
    let page = page_of(bob).await;
    let r = reset(bob, csrf_in(&page).unwrap()).await;
    assert_eq!(r.status(), 409);
    let refused = r.text().await.unwrap();
    assert!(refused.contains("id=\"reset-error\""), "{refused}");
    assert!(
        refused.contains("bob signs in with a passkey only"),
        "{refused}"
    );
    assert_eq!(passkeys_of(&app, bob).await, 1, "nothing removed");
    let (api, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = api
        .delete(app.url(&format!("/api/admin/users/{bob}/two-factor")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "LAST_SIGN_IN_METHOD");
    let ran = crate::recover::run(
        crate::recover::recover(&app, &["reset-2fa", "--username", "bob"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("recover reset-password --username bob"),
        "{ran:?}"
    );
    assert_eq!(passkeys_of(&app, bob).await, 1, "nothing removed");

    // Once he has a password, the CLI's reset goes through.
    sql(
        &app,
        format!(
            "UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = {alice}) WHERE id = {bob}"
        ),
    )
    .await;
    let ran = crate::recover::run(
        crate::recover::recover(&app, &["reset-2fa", "--username", "bob"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(passkeys_of(&app, bob).await, 0);
    let details: Vec<_> = audit_events(&app, "two_factor.reset")
        .await
        .into_iter()
        .map(|e| {
            format!(
                "{}:{}",
                e.target.unwrap_or_default(),
                e.detail.unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        details,
        [
            "bob:1 passkey removed; sessions ended",
            "alice:2 passkeys removed; sessions ended"
        ]
    );
}
