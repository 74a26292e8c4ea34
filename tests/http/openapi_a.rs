//! The OpenAPI document against the wire, for sign-in (`auth`, `oidc`), the second factor,
//! passkeys, the user table, the audit log and the settings: every operation is driven over
//! real HTTP and each real answer is checked against the schema the document gives for that
//! operation and status (`openapi::assert_conforms`), or, for an answer without a body,
//! that the status is documented (`openapi::assert_documented`).

use serde_json::{Value, json};

use crate::openapi::{Caller, document};
use crate::support::idp::{ALICE, Idp};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, sql};
use crate::two_factor::{code_at, enrol, now};

both_databases!(
    sign_in_second_factor_passkeys_and_sso_answer_as_documented,
    a_round_trip_through_an_openid_provider_answers_as_documented,
    users_audit_and_settings_answer_as_documented,
);

/// `auth`, `oidc`, `two_factor` and `passkeys`: each operation's success and its refusals.
async fn sign_in_second_factor_passkeys_and_sso_answer_as_documented(db: Db) {
    let url = Some("https://auth.example.com".parse().unwrap());
    let Some(app) = TestApp::start(db, |c| c.server.public_url = url, true).await else {
        return;
    };
    let doc = document(&app).await;
    let (login, me) = ("/api/auth/login", "/api/auth/me");

    // The sign-in's refusals, then a sign-in: `Me` with its CSRF token.
    let anon = Caller::anonymous(&app, &doc);
    let e = anon.call("POST", login, login, Some(json!({})), 422).await;
    assert_eq!(e["error"]["fields"][0]["field"], "username");
    let wrong = json!({ "username": ADMIN, "password": "not it" });
    anon.call("POST", login, login, Some(wrong), 401).await;
    let admin = Caller::signed_in(&app, &doc, ADMIN, ADMIN_PASSWORD).await;
    let who = admin.call("GET", me, me, None, 200).await;
    assert_eq!(who["auth_method"], "session");
    assert!(
        who["csrf_token"].is_string() && who["email"].is_string(),
        "{who}"
    );

    // With an API key: no CSRF token, which the schema allows to be absent.
    let key = admin
        .client
        .post(app.url("/api/me/api-keys"))
        .header("X-CSRF-Token", admin.csrf.clone().unwrap())
        .json(&json!({ "name": "openapi" }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let script = Caller {
        key: Some(key["key"].as_str().unwrap().to_owned()),
        ..Caller::anonymous(&app, &doc)
    };
    let who = script.call("GET", me, me, None, 200).await;
    assert_eq!(who["auth_method"], "api_key");
    assert!(who.get("csrf_token").is_none(), "{who}");

    // A member with a second factor: `202`, a wrong code, the right one.
    let bob = add_user(&app, "bob", "user").await;
    let browser = app.client();
    assert_eq!(
        app.login(&browser, "bob", MEMBER_PASSWORD).await.status(),
        303
    );
    let enrolled = enrol(&app, &browser).await;
    let step = Caller::anonymous(&app, &doc);
    let password = json!({ "username": "bob", "password": MEMBER_PASSWORD });
    let wait = step.call("POST", login, login, Some(password), 202).await;
    assert_eq!(wait["next"], "/api/auth/login/second-factor");
    let second = "/api/auth/login/second-factor";
    let e = step
        .call("POST", second, second, Some(json!({})), 422)
        .await;
    assert_eq!(e["error"]["fields"][0]["field"], "code");
    let e = step
        .call(
            "POST",
            second,
            second,
            Some(json!({ "code": "000000" })),
            401,
        )
        .await;
    assert_eq!(e["error"]["code"], "INVALID_SECOND_FACTOR");
    let code = code_at(&enrolled.secret, now() + 30);
    let who = step
        .call("POST", second, second, Some(json!({ "code": code })), 200)
        .await;
    assert_eq!(
        (who["username"].as_str(), who["email"].is_string()),
        (Some("bob"), true)
    );
    // No sign-in waiting (none started): 401 `UNAUTHENTICATED`.
    let e = Caller::anonymous(&app, &doc)
        .call(
            "POST",
            second,
            second,
            Some(json!({ "code": "123456" })),
            401,
        )
        .await;
    assert_eq!(e["error"]["code"], "UNAUTHENTICATED");

    // The instance's requirement, and the reset of bob's second factor (then 404: none left).
    let tf = "/api/admin/settings/two-factor";
    let got = admin.call("GET", tf, tf, None, 200).await;
    assert_eq!(got["required"], "nobody");
    let e = admin
        .call("PUT", tf, tf, Some(json!({ "required": "most" })), 422)
        .await;
    assert_eq!(e["error"]["fields"][0]["field"], "required");
    let put = json!({ "required": "admins", "after_proxy": true });
    let got = admin.call("PUT", tf, tf, Some(put), 200).await;
    assert_eq!(
        (
            got["after_proxy"].as_bool(),
            got["sso_providers"].as_array().map(Vec::len)
        ),
        (Some(true), Some(0))
    );
    admin
        .call("PUT", tf, tf, Some(json!({ "required": "nobody" })), 200)
        .await;
    let reset = "/api/admin/users/{id}/two-factor";
    let bobs = format!("/api/admin/users/{bob}/two-factor");
    admin.call("DELETE", reset, &bobs, None, 204).await;
    admin.call("DELETE", reset, &bobs, None, 404).await;

    // Passkeys: the list (one used, one not), rename, its refusals, remove. (Signed in
    // first: a passkey is a second factor too.)
    let bob_api = Caller::signed_in(&app, &doc, "bob", MEMBER_PASSWORD).await;
    for (name, cred, used) in [("Phone", "cGhvbmU", "1764000100"), ("Key", "a2V5", "NULL")] {
        sql(
            &app,
            format!(
                "INSERT INTO passkeys (user_id, name, credential_id, user_handle, passkey, \
                 created_at, last_used_at) VALUES ({bob}, '{name}', '{cred}', \
                 '0f8fad5b-d9cb-469f-a165-70867728950e', '{{}}', 1764000000, {used})"
            ),
        )
        .await;
    }
    let (list, one) = ("/api/me/passkeys", "/api/me/passkeys/{id}");
    let got = bob_api.call("GET", list, list, None, 200).await;
    let keys = got["passkeys"].as_array().unwrap();
    assert_eq!(keys[0]["last_used_at"], "2025-11-24T16:01:40Z");
    assert_eq!(keys[1]["last_used_at"], Value::Null);
    let phone = format!("/api/me/passkeys/{}", keys[0]["id"]);
    let named = |n: &str| Some(json!({ "name": n }));
    bob_api
        .call("PATCH", one, &phone, named("Pixel"), 204)
        .await;
    let e = bob_api.call("PATCH", one, &phone, named(""), 422).await;
    assert_eq!(e["error"]["fields"][0]["field"], "name");
    let none = "/api/me/passkeys/999999";
    bob_api.call("PATCH", one, none, named("x"), 404).await;
    bob_api.call("DELETE", one, &phone, None, 204).await;
    bob_api.call("DELETE", one, &phone, None, 404).await;

    // Changing one's password: a wrong current one (422, by field), then for real (204:
    // every session ends, this one too).
    let pw = "/api/me/password";
    let change = |current: &str| {
        Some(json!({ "current_password": current, "new_password": "a brand new password" }))
    };
    let e = bob_api.call("POST", pw, pw, change("not it"), 422).await;
    assert_eq!(e["error"]["fields"][0]["field"], "current_password");
    bob_api
        .call("POST", pw, pw, change(MEMBER_PASSWORD), 204)
        .await;
    bob_api.call("GET", me, me, None, 401).await;

    // Sign out.
    let out = "/api/auth/logout";
    admin.call("POST", out, out, None, 204).await;
    admin.call("GET", me, me, None, 401).await;

    // Sign-in with an OpenID provider: browser redirects, to the sign-in page with the
    // reason when the provider cannot be used.
    let sso = Caller::anonymous(&app, &doc);
    let to = sso
        .redirect(
            "/api/auth/oidc/{provider}/login",
            "/api/auth/oidc/nope/login?rd=x",
        )
        .await;
    assert_eq!(to, "/login?sso_error=unavailable");
    let to = sso
        .redirect(
            "/api/auth/oidc/{provider}/callback",
            "/api/auth/oidc/nope/callback?state=s&code=c",
        )
        .await;
    assert!(to.starts_with("/login?sso_error="), "{to}");
}

/// The SSO routes' successful answers, against the real provider (`tests/oidc-idp`): the
/// redirect to it, its redirect back signing in, and `/api/auth/me` saying `oidc`.
async fn a_round_trip_through_an_openid_provider_answers_as_documented(db: Db) {
    use crate::sso_api::{CLIENT_ID as client_id, CLIENT_SECRET as secret, env_provider};
    let idp = Idp::start(&Idp::default_users()).await;
    let provider = env_provider(&idp.issuer);
    let Some(app) = TestApp::start(db, |c| c.sso.providers.push(provider), true).await else {
        return;
    };
    let callback = app.url("/api/auth/oidc/idp/callback");
    idp.add_client(client_id, Some(secret), std::slice::from_ref(&callback))
        .await;
    let doc = document(&app).await;
    let browser = Caller::anonymous(&app, &doc);
    let to_idp = browser
        .redirect(
            "/api/auth/oidc/{provider}/login",
            "/api/auth/oidc/idp/login?next=/account",
        )
        .await;
    assert!(to_idp.starts_with(&idp.issuer), "{to_idp}");
    let back = idp.authorize(&to_idp, ALICE.username, ALICE.password).await;
    let path = back
        .strip_prefix(&app.url(""))
        .unwrap_or_else(|| panic!("{back}"));
    assert!(path.starts_with("/api/auth/oidc/idp/callback?"), "{back}");
    let to = browser
        .redirect("/api/auth/oidc/{provider}/callback", path)
        .await;
    assert_eq!(to, "/account");
    let me = "/api/auth/me";
    let who = browser.call("GET", me, me, None, 200).await;
    assert_eq!(who["auth_method"], "oidc");
}

/// Inserts `n` accounts straight into the table (no password hashing: fast), every other
/// one with a last sign-in.
async fn filler_users(app: &TestApp, n: usize) {
    app.state
        .db
        .run(move |c| {
            use diesel::RunQueryDsl;
            for i in 0..n {
                let last = if i % 2 == 0 { "1764000000" } else { "NULL" };
                diesel::sql_query(format!(
                    "INSERT INTO users (username, username_key, role, status, session_version, \
                     created_at, updated_at, last_login_at) VALUES ('filler{i:02}', \
                     'filler{i:02}', 'user', 'active', 1, {}, 0, {last})",
                    1000 + i
                ))
                .execute(c)?;
            }
            // Rows written behind the app's back get their search key as after an upgrade.
            hallpass::db::user_search::fill_search_keys(c)?;
            Ok::<_, hallpass::db::DbError>(())
        })
        .await
        .unwrap();
}

/// `admin_users` and `admin` (audit, settings): every operation and action.
async fn users_audit_and_settings_answer_as_documented(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let doc = document(&app).await;
    let admin = Caller::signed_in(&app, &doc, ADMIN, ADMIN_PASSWORD).await;
    let admin_id = crate::support::user(&app, ADMIN).await.id;
    let (users, one, act) = (
        "/api/admin/users",
        "/api/admin/users/{id}",
        "/api/admin/users/{id}/{action}",
    );

    // Create: with a password (no one-time password), without (one), refused (taken).
    let made = admin
        .call(
            "POST",
            users,
            users,
            Some(json!({ "username": "carol", "password": "carol's password", "role": "viewer" })),
            201,
        )
        .await;
    assert_eq!(made["one_time_password"], Value::Null);
    assert_eq!(made["user"]["last_login_at"], Value::Null);
    let carol = made["user"]["id"].as_i64().unwrap();
    let made = admin
        .call(
            "POST",
            users,
            users,
            Some(json!({ "username": "dave", "email": "d@example.com" })),
            201,
        )
        .await;
    assert!(made["one_time_password"].is_string(), "{made}");
    let dave = made["user"]["id"].as_i64().unwrap();
    let e = admin
        .call(
            "POST",
            users,
            users,
            Some(json!({ "username": "carol" })),
            422,
        )
        .await;
    assert_eq!(e["error"]["code"], "VALIDATION_FAILED");

    // The list, a page at a time: the admin has signed in (`last_login_at` a number), the
    // others not (`null`); a second page through the cursor; a refused filter.
    let got = admin
        .call("GET", users, "/api/admin/users", None, 200)
        .await;
    assert_eq!(got["users"].as_array().unwrap().len(), 3);
    assert_eq!(got["next"], Value::Null);
    filler_users(&app, 55).await;
    let first = admin
        .call(
            "GET",
            users,
            "/api/admin/users?sort=username&dir=asc",
            None,
            200,
        )
        .await;
    let next = first["next"].as_str().expect("a second page").to_owned();
    let page = format!(
        "/api/admin/users?sort=username&dir=asc&after={}",
        url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    let second = admin.call("GET", users, &page, None, 200).await;
    assert!(!second["users"].as_array().unwrap().is_empty());
    let e = admin
        .call("GET", users, "/api/admin/users?sort=age", None, 400)
        .await;
    assert_eq!(e["error"]["code"], "BAD_REQUEST");

    // One account; an unknown one.
    let carols = format!("/api/admin/users/{carol}");
    let got = admin.call("GET", one, &carols, None, 200).await;
    assert_eq!(got["role"], "viewer");
    admin
        .call("GET", one, "/api/admin/users/999999", None, 404)
        .await;

    // Patch: a change, a refusal by policy (409), an invalid field (422).
    let got = admin
        .call(
            "PATCH",
            one,
            &carols,
            Some(json!({ "display_name": "Carol" })),
            200,
        )
        .await;
    assert_eq!(got["display_name"], "Carol");
    let mine = format!("/api/admin/users/{admin_id}");
    let e = admin
        .call("PATCH", one, &mine, Some(json!({ "role": "user" })), 409)
        .await;
    assert_eq!(e["error"]["code"], "CANNOT_DEMOTE_SELF");
    admin
        .call(
            "PATCH",
            one,
            &carols,
            Some(json!({ "email": "not an email" })),
            422,
        )
        .await;

    // Every action, in an order each one is allowed in.
    let on = |id: i64, action: &str| format!("/api/admin/users/{id}/{action}");
    let state = |v: &Value| {
        (
            v["status"].as_str().map(str::to_owned),
            v["deleted"].as_bool(),
        )
    };
    let got = admin
        .call("POST", act, &on(carol, "disable"), None, 200)
        .await;
    assert_eq!(state(&got), (Some("disabled".into()), Some(false)));
    let got = admin
        .call("POST", act, &on(carol, "enable"), None, 200)
        .await;
    assert_eq!(state(&got), (Some("active".into()), Some(false)));
    sql(
        &app,
        format!("UPDATE users SET status = 'pending' WHERE id IN ({carol}, {dave})"),
    )
    .await;
    let got = admin
        .call("POST", act, &on(carol, "approve"), None, 200)
        .await;
    assert_eq!(state(&got), (Some("active".into()), Some(false)));
    let got = admin
        .call("POST", act, &on(dave, "reject"), None, 200)
        .await;
    assert_eq!(state(&got), (Some("rejected".into()), Some(false)));
    let new_password = Some(json!({ "password": "another long password" }));
    admin
        .call("POST", act, &on(carol, "password"), new_password, 200)
        .await;
    let e = admin
        .call("POST", act, &on(carol, "password"), None, 422)
        .await;
    assert_eq!(e["error"]["fields"][0]["field"], "password");
    let e = admin
        .call("POST", act, &on(admin_id, "disable"), None, 409)
        .await;
    assert_eq!(e["error"]["code"], "CANNOT_DISABLE_SELF");
    let e = admin
        .call("POST", act, &on(carol, "explode"), None, 404)
        .await;
    assert_eq!(e["error"]["code"], "NOT_FOUND");
    admin
        .call("POST", act, &on(999_999, "enable"), None, 404)
        .await;
    let e = admin
        .call("POST", act, &on(carol, "purge"), None, 409)
        .await;
    assert_eq!(e["error"]["code"], "PURGE_NEEDS_DELETE");

    // Delete (the account as it is now), restore, delete again, purge.
    let got = admin.call("DELETE", one, &carols, None, 200).await;
    assert_eq!(got["deleted"], true);
    let got = admin
        .call("POST", act, &on(carol, "restore"), None, 200)
        .await;
    assert_eq!(got["deleted"], false);
    admin.call("DELETE", one, &carols, None, 200).await;
    admin
        .call("DELETE", one, "/api/admin/users/999999", None, 404)
        .await;
    let e = admin
        .call(
            "POST",
            act,
            &on(carol, "purge"),
            Some(json!({ "confirm": "dave" })),
            409,
        )
        .await;
    assert_eq!(e["error"]["code"], "PURGE_NOT_CONFIRMED");
    let confirm = Some(json!({ "confirm": "carol" }));
    admin
        .call("POST", act, &on(carol, "purge"), confirm, 204)
        .await;
    admin.call("GET", one, &carols, None, 404).await;

    // The audit log (with what the above wrote), a page and a refused cursor.
    let audit = "/api/admin/audit";
    let got = admin
        .call("GET", audit, "/api/admin/audit?action=user.*", None, 200)
        .await;
    let events = got["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "user.purge"), "{got}");
    let got = admin
        .call("GET", audit, "/api/admin/audit", None, 200)
        .await;
    assert!(
        got["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["ip"].is_string())
    );
    let e = admin
        .call("GET", audit, "/api/admin/audit?before=yesterday", None, 400)
        .await;
    assert_eq!(e["error"]["code"], "BAD_REQUEST");

    // The registration settings: read, write, a body missing a field.
    let settings = "/api/admin/settings";
    let got = admin.call("GET", settings, settings, None, 200).await;
    assert!(got["registration_enabled"].is_boolean());
    let both = json!({ "registration_enabled": true, "auto_approve_registrations": false });
    let got = admin.call("PUT", settings, settings, Some(both), 200).await;
    assert_eq!(got["registration_enabled"], true);
    let half = json!({ "registration_enabled": true });
    admin.call("PUT", settings, settings, Some(half), 422).await;
}
