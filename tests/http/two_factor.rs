//! Two-factor sign-in (issue 14, points 1-3): enrolment with a real code computed here from
//! the secret the page shows, the second step (HTML and JSON), replay, recovery codes, the
//! rate limit, the instance's requirement, and the resets.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{ADMIN, Db, MEMBER_PASSWORD, TestApp, add_user, csrf_in};

/// The TOTP code of a base32 secret at unix time `t` (RFC 6238, SHA-1, 6 digits, 30 s).
pub fn code_at(secret: &str, t: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret.replace(' ', "")).unwrap();
    totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(t)
        .to_string()
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The text of the element with this id (`<code id="secret">…</code>`).
fn text_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find('<').unwrap();
    rest[start..end].trim().to_owned()
}

/// The recovery codes on the page that shows them once.
fn recovery_codes(html: &str) -> Vec<String> {
    let list = &html[html.find("id=\"recovery-codes\"").expect("recovery codes")..];
    let list = &list[..list.find("</ul>").unwrap()];
    list.split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect()
}

/// A finished enrolment.
pub struct Enrolled {
    /// As the page shows it (groups of four).
    pub secret: String,
    pub codes: Vec<String>,
    /// The time the confirming code was computed for: that step is spent, so the next
    /// sign-in must use a later one (`code_at(secret, now() + 30)`).
    pub at: u64,
}

/// Sets up the second factor of the signed-in `client` through the account pages.
pub async fn enrol(app: &TestApp, client: &reqwest::Client) -> Enrolled {
    let token = app.csrf(client, "/account/two-factor").await;
    let page = client
        .post(app.url("/account/two-factor/start"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("<svg"),
        "a QR code drawn on the server: {page}"
    );
    let secret = text_of(&page, "secret");
    let token = csrf_in(&page).unwrap();
    let at = now();
    let done = client
        .post(app.url("/account/two-factor/confirm"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("code", &code_at(&secret, at)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let codes = recovery_codes(&done.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    Enrolled { secret, codes, at }
}

/// Signs in with the password only; returns the client and where it was sent.
pub async fn password_step(app: &TestApp, name: &str, password: &str) -> (reqwest::Client, String) {
    let c = app.client();
    let r = app.login(&c, name, password).await;
    assert_eq!(r.status(), 303, "password accepted");
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    (c, to)
}

/// Posts a code to the HTML second step.
async fn send_code(app: &TestApp, c: &reqwest::Client, code: &str) -> reqwest::Response {
    let token = app.csrf(c, "/login").await;
    c.post(app.url("/login/two-factor"))
        .form(&[("csrf_token", token.as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

/// Who the API says the client is: `Some(username)` or `None` (401).
async fn whoami(app: &TestApp, c: &reqwest::Client) -> Option<String> {
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    if r.status() == 401 {
        return None;
    }
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    Some(me["username"].as_str().unwrap().to_owned())
}

/// A member with a second factor set up; returns the secret and recovery codes.
async fn member_with_totp(app: &TestApp, name: &str) -> Enrolled {
    add_user(app, name, "user").await;
    let c = app.client();
    assert_eq!(app.login(&c, name, MEMBER_PASSWORD).await.status(), 303);
    enrol(app, &c).await
}

both_databases!(
    the_password_alone_no_longer_signs_in,
    a_code_works_once,
    recovery_codes_work_once_and_are_kept_hashed,
    wrong_codes_count_against_the_rate_limit,
    the_json_api_signs_in_in_two_steps,
    turning_it_off_needs_a_code,
);

async fn the_password_alone_no_longer_signs_in(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let secret = member_with_totp(&app, "alice").await.secret;
    // Sealed at rest: the secret the page showed is nowhere in the database row.
    let stored = sql_text(&app, "SELECT secret AS v FROM user_totp").await;
    assert!(!stored.contains(&secret.replace(' ', "")), "{stored}");

    let (c, to) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(to, "/login/two-factor");
    // Half signed in: an anonymous visitor everywhere else.
    assert_eq!(whoami(&app, &c).await, None);
    let home = c.get(app.url("/account")).send().await.unwrap();
    assert_eq!(home.status(), 303);
    assert!(
        home.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next")
    );
    let page = c
        .get(app.url("/login/two-factor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Signing in as <strong>alice</strong>"),
        "{page}"
    );

    let wrong = send_code(&app, &c, "000000").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That code is not valid")
    );
    let empty = send_code(&app, &c, " ").await;
    assert_eq!(empty.status(), 422);
    assert_eq!(whoami(&app, &c).await, None);

    let ok = send_code(&app, &c, &code_at(&secret, now() + 30)).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/");
    assert_eq!(whoami(&app, &c).await.as_deref(), Some("alice"));
    // The step is gone: the second-step page now sends a signed-in visitor on.
    let again = c.get(app.url("/login/two-factor")).send().await.unwrap();
    assert_eq!(again.status(), 303);
}

async fn a_code_works_once(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let enrolled = member_with_totp(&app, "alice").await;
    let secret = enrolled.secret;
    // The code that confirmed enrolment cannot sign in (its step is spent).
    let (c, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    let replay = send_code(&app, &c, &code_at(&secret, enrolled.at)).await;
    assert_eq!(replay.status(), 401, "the enrolment code is spent");
    let next = code_at(&secret, now() + 30);
    assert_eq!(send_code(&app, &c, &next).await.status(), 303);
    // A second browser with the same code inside its window: refused.
    let (c2, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(
        send_code(&app, &c2, &next).await.status(),
        401,
        "replay refused"
    );
    assert_eq!(whoami(&app, &c2).await, None);
    let audit = sql_text(
        &app,
        "SELECT outcome || ':' || COALESCE(detail, '') AS v FROM audit_events WHERE action = 'login.second_factor' ORDER BY id",
    )
    .await;
    assert_eq!(audit, "failure:totp|success:totp|failure:totp", "{audit}");
}

async fn recovery_codes_work_once_and_are_kept_hashed(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let codes = member_with_totp(&app, "alice").await.codes;
    let stored = sql_text(&app, "SELECT code_hmac AS v FROM recovery_codes").await;
    for code in &codes {
        assert!(
            !stored.contains(&code.replace('-', "")),
            "stored in clear: {code}"
        );
    }
    let (c, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    // Typed in upper case and without the dash: still the same code.
    let typed = codes[3].replace('-', "").to_uppercase();
    assert_eq!(send_code(&app, &c, &typed).await.status(), 303);
    assert_eq!(whoami(&app, &c).await.as_deref(), Some("alice"));
    let left = c
        .get(app.url("/account/two-factor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(left.contains("9 of 10 recovery codes left"), "{left}");

    let (c2, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(send_code(&app, &c2, &codes[3]).await.status(), 401, "spent");
    // Another account's code is no code of alice's.
    let bobs = member_with_totp(&app, "bob").await.codes;
    assert_eq!(send_code(&app, &c2, &bobs[0]).await.status(), 401);
    assert_eq!(send_code(&app, &c2, &codes[4]).await.status(), 303);
}

async fn wrong_codes_count_against_the_rate_limit(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.rate_limit.max_failures_per_account = 3;
            c.auth.rate_limit.max_failures_per_ip = 50;
        },
        true,
    )
    .await
    else {
        return;
    };
    let secret = member_with_totp(&app, "alice").await.secret;
    let (c, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(send_code(&app, &c, "123456").await.status(), 401);
    }
    // Over the limit: even the right code is refused, and so is a fresh password step's.
    let limited = send_code(&app, &c, &code_at(&secret, now() + 30)).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let (c2, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    let limited = send_code(&app, &c2, &code_at(&secret, now() + 30)).await;
    assert_eq!(
        limited.status(),
        429,
        "a right password does not buy more guesses"
    );
    assert_eq!(whoami(&app, &c2).await, None);
    let refused = sql_text(
        &app,
        "SELECT action AS v FROM audit_events WHERE outcome = 'refused'",
    )
    .await;
    assert!(refused.contains("rate_limit.second_factor"), "{refused}");
}

async fn the_json_api_signs_in_in_two_steps(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let secret = member_with_totp(&app, "alice").await.secret;
    // An API key made before is not affected by the second factor.
    let key = hallpass::service::api_keys::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &crate::support::user(&app, "alice").await,
        hallpass::domain::NewApiKey::parse("script", None).unwrap(),
    )
    .await
    .unwrap()
    .secret;
    let c = app.client();
    let login = |body: serde_json::Value| c.post(app.url("/api/auth/login")).json(&body).send();
    let r = login(serde_json::json!({"username": "alice", "password": MEMBER_PASSWORD}))
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["second_factor_required"], true);
    assert_eq!(body["next"], "/api/auth/login/second-factor");
    assert_eq!(whoami(&app, &c).await, None);

    let second = |code: String| {
        c.post(app.url("/api/auth/login/second-factor"))
            .json(&serde_json::json!({ "code": code }))
            .send()
    };
    let r = second("000000".into()).await.unwrap();
    assert_eq!(r.status(), 401);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "INVALID_SECOND_FACTOR");
    let r = second(String::new()).await.unwrap();
    assert_eq!(r.status(), 422);
    let r = second(code_at(&secret, now() + 30)).await.unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert!(me["csrf_token"].is_string());
    assert_eq!(whoami(&app, &c).await.as_deref(), Some("alice"));

    // Without a password step first, the second step has nothing to finish.
    let stranger = app.client();
    let r = stranger
        .post(app.url("/api/auth/login/second-factor"))
        .json(&serde_json::json!({"code": code_at(&secret, now() + 30)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let by_key = app
        .client()
        .get(app.url("/api/auth/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(by_key.status(), 200, "API keys need no second factor");
}

async fn turning_it_off_needs_a_code(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let enrolled = member_with_totp(&app, "alice").await;
    let (c, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    let code = code_at(&enrolled.secret, now() + 30);
    assert_eq!(send_code(&app, &c, &code).await.status(), 303);
    let disable = |code: String| {
        let c = c.clone();
        let app = &app;
        async move {
            let token = app.csrf(&c, "/account/two-factor").await;
            c.post(app.url("/account/two-factor/disable"))
                .form(&[("csrf_token", token.as_str()), ("code", code.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(disable("000000".into()).await.status(), 401);
    // Starting a new enrolment while one is on is refused.
    let token = app.csrf(&c, "/account/two-factor").await;
    let start = c
        .post(app.url("/account/two-factor/start"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 409);
    // The code just used to sign in is spent; a recovery code proves it is the owner.
    assert_eq!(disable(code).await.status(), 401);
    let r = disable(enrolled.codes[0].clone()).await;
    assert_eq!(r.status(), 303);
    // Off: the password alone signs in again.
    let (c2, to) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(to, "/");
    assert_eq!(whoami(&app, &c2).await.as_deref(), Some("alice"));
}

/// One text column `v` of every row, joined with `|`.
pub async fn sql_text(app: &TestApp, query: &str) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let query = query.to_owned();
    let rows: Vec<Row> = app
        .state
        .db
        .run(move |c| {
            diesel::sql_query(query.as_str())
                .load::<Row>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap();
    rows.into_iter().map(|r| r.v).collect::<Vec<_>>().join("|")
}

both_databases!(
    required_for_admins_sends_them_to_enrolment_first,
    the_break_glass_admin_is_exempt,
    admins_reset_it_from_the_user_table_and_the_api,
    the_recovery_cli_resets_it,
    proxy_sign_in_leaves_it_to_the_proxy,
    sso_leaves_it_to_the_provider_unless_chosen,
);

/// Posts the settings form: who must have a second factor.
async fn require(app: &TestApp, admin: &reqwest::Client, who: &str) -> reqwest::Response {
    let token = app.csrf(admin, "/admin/settings").await;
    admin
        .post(app.url("/admin/settings/two-factor"))
        .form(&[("csrf_token", token.as_str()), ("required", who)])
        .send()
        .await
        .unwrap()
}

async fn required_for_admins_sends_them_to_enrolment_first(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    assert_eq!(require(&app, &admin, "root").await.status(), 400);
    let r = require(&app, &admin, "admins").await;
    assert_eq!(r.status(), 303);
    let settings = admin
        .get(app.url("/admin/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        settings.contains(r#"value="admins" id="two-factor-admins" checked"#),
        "{settings}"
    );
    // Applies from the next sign-in: the session that changed it goes on.
    assert_eq!(whoami(&app, &admin).await.as_deref(), Some(ADMIN));
    add_user(&app, "member", "user").await;
    let (m, to) = password_step(&app, "member", MEMBER_PASSWORD).await;
    assert_eq!(to, "/", "members are not required");
    assert_eq!(whoami(&app, &m).await.as_deref(), Some("member"));

    let (c, to) = password_step(&app, ADMIN, crate::support::ADMIN_PASSWORD).await;
    assert_eq!(to, "/login/two-factor/setup");
    // Nothing else until it is done.
    assert_eq!(whoami(&app, &c).await, None);
    for path in ["/admin/users", "/account", "/account/two-factor", "/"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/login"), "{path} -> {to}");
    }
    let r = c.get(app.url("/login/two-factor")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login/two-factor/setup");
    let page = c
        .get(app.url("/login/two-factor/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"enforced\"") && page.contains("<svg"),
        "{page}"
    );
    let secret = text_of(&page, "secret");
    // The same secret on a reload (the enrolment in progress, not a new one).
    let again = c
        .get(app.url("/login/two-factor/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&again, "secret"), secret);
    let token = csrf_in(&page).unwrap();
    let confirm = |code: String| {
        c.post(app.url("/login/two-factor/setup"))
            .form(&[("csrf_token", token.clone()), ("code", code)])
            .send()
    };
    let wrong = confirm("000000".into()).await.unwrap();
    assert_eq!(wrong.status(), 422);
    assert!(wrong.text().await.unwrap().contains("does not match"));
    assert_eq!(whoami(&app, &c).await, None);
    let done = confirm(code_at(&secret, now())).await.unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert_eq!(recovery_codes(&done).len(), 10);
    assert!(done.contains(r#"id="continue" href="/""#), "{done}");
    assert_eq!(whoami(&app, &c).await.as_deref(), Some(ADMIN));
    // Required: its owner cannot turn it off.
    let token = app.csrf(&c, "/account/two-factor").await;
    let off = c
        .post(app.url("/account/two-factor/disable"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("code", &recovery_codes(&done)[0]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), 409);
    let audit = sql_text(
        &app,
        "SELECT action || ':' || COALESCE(detail, '') AS v FROM audit_events WHERE action LIKE 'settings.two_factor' OR action LIKE 'two_factor.%' ORDER BY id",
    )
    .await;
    assert_eq!(
        audit,
        "settings.two_factor:nobody; after sso: none; after proxy: no -> admins; after sso: none; after proxy: no|two_factor.enable:"
    );
    // The JSON API cannot enrol: it says what to do.
    let api = app.client();
    let r = api
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": "member", "password": MEMBER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "members are not required");
    assert_eq!(require(&app, &c, "everyone").await.status(), 303);
    let r = app
        .client()
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": "member", "password": MEMBER_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "SECOND_FACTOR_ENROLMENT_REQUIRED");
}

async fn the_break_glass_admin_is_exempt(db: Db) {
    const KEY: &str = "break-glass-key-0123456789";
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.env_auth = hallpass::env_auth::EnvAuth::from_env(|k| {
                (k == "HALLPASS_ADMIN_KEY").then(|| KEY.to_owned())
            })
            .unwrap();
        },
        false,
    )
    .await
    else {
        return;
    };
    // An instance set up with another admin ("admin" is the break-glass account's name).
    add_user(&app, "owner", "admin").await;
    app.state.setup.mark_done();
    let (c, to) = password_step(&app, "admin", KEY).await;
    assert_eq!(to, "/");
    assert_eq!(require(&app, &c, "everyone").await.status(), 303);
    let (c, to) = password_step(&app, "admin", KEY).await;
    assert_eq!(
        to, "/",
        "break-glass: no second factor, even when everyone must have one"
    );
    let me: serde_json::Value = c
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "admin");
    // It says so where the others set theirs up, and cannot set one up.
    let page = c
        .get(app.url("/account/two-factor"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Exempt") && page.contains("never uses a second factor"),
        "{page}"
    );
    let token = csrf_in(&page).unwrap();
    let start = c
        .post(app.url("/account/two-factor/start"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 409);
}

async fn admins_reset_it_from_the_user_table_and_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let enrolled = member_with_totp(&app, "alice").await;
    let id = crate::support::user(&app, "alice").await.id;
    let (alice, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(
        send_code(&app, &alice, &code_at(&enrolled.secret, now() + 30))
            .await
            .status(),
        303
    );
    assert_eq!(whoami(&app, &alice).await.as_deref(), Some("alice"));

    let admin = app.admin_client().await;
    let table = admin
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        table.contains(&format!("href=\"/admin/users/{id}/two-factor\"")),
        "{table}"
    );
    let page = admin
        .get(app.url(&format!("/admin/users/{id}/two-factor")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("badge-active\">On"), "{page}");
    let token = csrf_in(&page).unwrap();
    let r = admin
        .post(app.url(&format!("/admin/users/{id}/two-factor/reset")))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/admin/users?notice=two_factor_reset"
    );
    assert_eq!(whoami(&app, &alice).await, None, "her sessions ended");
    let (alice, to) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(to, "/", "the password alone again");
    // Again through the API.
    enrol(&app, &alice).await;
    let key = hallpass::service::api_keys::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &crate::support::user(&app, ADMIN).await,
        hallpass::domain::NewApiKey::parse("admin script", None).unwrap(),
    )
    .await
    .unwrap()
    .secret;
    let delete = || {
        app.client()
            .delete(app.url(&format!("/api/admin/users/{id}/two-factor")))
            .bearer_auth(&key)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), 204);
    let r = delete().await.unwrap();
    assert_eq!(r.status(), 404, "nothing left to reset");
    let missing = app
        .client()
        .delete(app.url("/api/admin/users/99999/two-factor"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The requirement through the API.
    let put = |v: serde_json::Value| {
        app.client()
            .put(app.url("/api/admin/settings/two-factor"))
            .bearer_auth(&key)
            .json(&v)
            .send()
    };
    assert_eq!(
        put(serde_json::json!({"required": "sometimes"}))
            .await
            .unwrap()
            .status(),
        422
    );
    let r = put(serde_json::json!({"required": "everyone"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got: serde_json::Value = app
        .client()
        .get(app.url("/api/admin/settings/two-factor"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["required"], "everyone");
    let audit = sql_text(
        &app,
        "SELECT actor || ':' || COALESCE(target, '') AS v FROM audit_events WHERE action = 'two_factor.reset' ORDER BY id",
    )
    .await;
    assert_eq!(audit, format!("{ADMIN}:alice|{ADMIN}:alice"));
}

async fn the_recovery_cli_resets_it(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let enrolled = member_with_totp(&app, "alice").await;
    let (alice, _) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(
        send_code(&app, &alice, &code_at(&enrolled.secret, now() + 30))
            .await
            .status(),
        303
    );
    let run = |args: &'static [&'static str]| {
        let url = app.state.config.database.url.expose().to_owned();
        let dir = app.data_dir().to_owned();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_hallpass"))
                .current_dir(dir)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HALLPASS_DATABASE__URL", url)
                .arg("recover")
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        })
    };
    let out = run(&["reset-2fa", "--username", "alice"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Two-factor sign-in removed for \"alice\""),
        "{stdout}"
    );
    assert_eq!(whoami(&app, &alice).await, None, "her sessions ended");
    let (_, to) = password_step(&app, "alice", MEMBER_PASSWORD).await;
    assert_eq!(to, "/");
    let out = run(&["reset-2fa", "--username", "alice"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "nothing to reset");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no second factor"));
    let out = run(&["reset-2fa", "--username", "nobody-here"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let audit = sql_text(
        &app,
        "SELECT actor || ':' || COALESCE(target, '') AS v FROM audit_events WHERE action = 'two_factor.reset'",
    )
    .await;
    assert_eq!(audit, "cli:alice");
}

async fn proxy_sign_in_leaves_it_to_the_proxy(db: Db) {
    use std::net::{IpAddr, Ipv4Addr};
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.2".into()];
            c.auth.proxy.policy = "auto".into();
        },
        true,
    )
    .await
    else {
        return;
    };
    let proxy = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let me = || {
        proxy
            .get(app.url("/api/auth/me"))
            .header("Remote-User", "pat")
            .send()
    };
    assert_eq!(
        me().await.unwrap().status(),
        200,
        "pat is created by the proxy"
    );
    // Pat sets up a second factor (through the service, as the account page would).
    let pat = crate::support::user(&app, "pat").await;
    let started = hallpass::service::two_factor::start(&app.state.db, &app.state.secret, &pat)
        .await
        .unwrap();
    hallpass::service::two_factor::confirm(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &pat,
        &code_at(&started.secret, now()),
    )
    .await
    .unwrap();
    assert!(
        hallpass::service::two_factor::is_enrolled(&app.state.db, pat.id)
            .await
            .unwrap()
    );
    let r = me().await.unwrap();
    assert_eq!(r.status(), 200, "the proxy vouched: no second step");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["auth_method"], "proxy");
}

async fn sso_leaves_it_to_the_provider_unless_chosen(db: Db) {
    use crate::support::idp::{BOB, Idp};
    use hallpass::domain::sso::{Policy, Provider, Source};
    const SECRET: &str = "idp-client-secret-0123456789";
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let Some(app) = TestApp::start(
        db,
        move |c| {
            c.sso.providers.push(Provider {
                id: "idp".into(),
                label: "Home IdP".into(),
                issuer,
                client_id: "hallpass".into(),
                client_secret: Some(secrecy::SecretString::from(SECRET.to_owned())),
                scopes: vec!["openid".into(), "profile".into(), "email".into()],
                subject_claim: "sub".into(),
                username_claim: "preferred_username".into(),
                email_claim: "email".into(),
                groups_claim: None,
                policy: Policy::Auto,
                enabled: true,
                source: Source::Env,
            });
        },
        true,
    )
    .await
    else {
        return;
    };
    idp.add_client(
        "hallpass",
        Some(SECRET),
        &[app.url("/api/auth/oidc/idp/callback")],
    )
    .await;
    // Signs in through the provider as Bob; returns the client and where the callback sent it.
    let sso = || async {
        let c = app.client();
        let r = c
            .get(app.url("/api/auth/oidc/idp/login?next=/account"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let to_idp = r.headers()["location"].to_str().unwrap().to_owned();
        let callback = idp.authorize(&to_idp, BOB.username, BOB.password).await;
        let r = c.get(callback).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        (c, to)
    };
    let (bob, to) = sso().await;
    assert_eq!(to, "/account");
    let enrolled = enrol(&app, &bob).await;
    // By default the provider's sign-in is enough.
    let (c, to) = sso().await;
    assert_eq!(to, "/account", "no second step after single sign-on");
    assert_eq!(whoami(&app, &c).await.as_deref(), Some("bob"));

    // The admin asks for it after this provider too.
    let admin = app.admin_client().await;
    let settings = admin
        .get(app.url("/admin/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(settings.contains(r#"name="sso" value="idp""#), "{settings}");
    let token = csrf_in(&settings).unwrap();
    let r = admin
        .post(app.url("/admin/settings/two-factor"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("required", "nobody"),
            ("sso", "idp"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (c, to) = sso().await;
    assert_eq!(to, "/login/two-factor");
    assert_eq!(
        whoami(&app, &c).await,
        None,
        "half signed in after the provider"
    );
    let r = send_code(&app, &c, &code_at(&enrolled.secret, now() + 30)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account");
    assert_eq!(whoami(&app, &c).await.as_deref(), Some("bob"));
    // The session the second step ends in still says how it began (issue 16, point 4).
    let me: serde_json::Value = c
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["auth_method"], "oidc", "{me}");
    let got: serde_json::Value = admin
        .get(app.url("/api/admin/settings/two-factor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        got,
        serde_json::json!({"required": "nobody", "sso_providers": ["idp"], "after_proxy": false})
    );
}
