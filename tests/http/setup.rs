//! The first-run wizard and the setup gate.

use crate::support::nginx::Nginx;
use crate::support::{Db, TestApp, audit_events, csrf_in};

both_databases!(
    empty_instance_sends_everyone_to_setup,
    wizard_creates_the_admin_and_signs_in,
    wizard_errors_keep_input_but_not_passwords,
    non_local_clients_need_the_setup_code,
    simultaneous_setups_create_one_admin,
    loopback_clients_need_the_setup_code_too,
    a_rebinding_page_cannot_claim_the_instance,
    wrong_setup_codes_are_rate_limited,
    behind_a_bare_nginx_proxy_pass_the_wizard_needs_the_code,
    every_mistake_at_once_and_the_code_as_people_type_it,
);

async fn empty_instance_sends_everyone_to_setup(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    for path in ["/", "/login", "/account", "/no-such-page"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/setup", "{path}");
    }
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SETUP_REQUIRED");
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert!(
        app.state
            .setup
            .code()
            .is_some_and(|code| { code.len() == 9 && code.as_bytes()[4] == b'-' })
    );
}

async fn wizard_creates_the_admin_and_signs_in(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let page = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"username\""));
    assert!(
        page.contains("name=\"setup_code\""),
        "every visitor needs the code, loopback ones too"
    );
    let code = app.state.setup.code().unwrap();
    assert!(page.contains("autocomplete=\"new-password\""));
    let token = csrf_in(&page).unwrap();
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", code.as_str()),
            ("username", "Alice"),
            ("email", "alice@example.com"),
            ("password", "a long passphrase"),
            ("password_confirm", "a long passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let home = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains("id=\"me-username\">Alice<"), "{home}");
    assert!(home.contains("id=\"me-role\">admin<"));

    // After setup the wizard offers no form, and posting to it changes nothing.
    let after = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(after.contains("id=\"setup-done\""));
    assert!(!after.contains("name=\"password\""));
    let token = csrf_in(&after).unwrap();
    let again = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "mallory"),
            ("password", "another passphrase"),
            ("password_confirm", "another passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let users = app.state.db.run(hallpass::db::users::count).await.unwrap();
    assert_eq!(users, 1);
    assert!(app.state.setup.code().is_none(), "the setup code is burnt");
}

async fn wizard_errors_keep_input_but_not_passwords(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let token = app.csrf(&c, "/setup").await;
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "x"),
            ("email", "not-an-email"),
            ("password", "secret-1"),
            ("password_confirm", "secret-2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"username-error\">Username must be 2–50 characters long."),
        "{page}"
    );
    assert!(page.contains("id=\"email-error\">Email must be a valid address"));
    assert!(page.contains("id=\"password_confirm-error\">The two passwords do not match."));
    assert!(page.contains("value=\"x\""), "username kept");
    assert!(page.contains("value=\"not-an-email\""), "email kept");
    assert!(
        !page.contains("secret-1") && !page.contains("secret-2"),
        "passwords never echoed"
    );

    let token = csrf_in(&page).unwrap();
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "root"),
            ("email", ""),
            ("password", "short"),
            ("password_confirm", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Password must be at least 8 characters long.")
    );
    assert_eq!(
        app.state.db.run(hallpass::db::users::count).await.unwrap(),
        0
    );
}

async fn non_local_clients_need_the_setup_code(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    // A request relayed by a reverse proxy on this host looks like 127.0.0.1 but is not local.
    let page = c
        .get(app.url("/setup"))
        .header("X-Forwarded-For", "203.0.113.7")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"setup_code\""));
    let token = csrf_in(&page).unwrap();
    let post = |code: String| {
        let (c, token, url) = (c.clone(), token.clone(), app.url("/setup"));
        async move {
            c.post(url)
                .header("X-Forwarded-For", "203.0.113.7")
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("setup_code", code.as_str()),
                    ("username", "remote"),
                    ("email", ""),
                    ("password", "a long passphrase"),
                    ("password_confirm", "a long passphrase"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(String::new()).await;
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"setup_code-error\""), "{body}");
    assert!(body.contains("value=\"remote\""));
    assert_eq!(post("AAAA-AAAA".into()).await.status(), 422);
    assert_eq!(
        app.state.db.run(hallpass::db::users::count).await.unwrap(),
        0
    );

    let code = app.state.setup.code().unwrap().to_lowercase();
    let r = post(format!("  {code} ")).await;
    assert_eq!(r.status(), 303, "the right code (any case) is accepted");
    assert_eq!(
        app.state.db.run(hallpass::db::users::count).await.unwrap(),
        1
    );
}

async fn simultaneous_setups_create_one_admin(db: Db) {
    // Through HTTP: two browsers submit the wizard at the same instant.
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let (a, b) = (app.client(), app.client());
    let (ta, tb) = (app.csrf(&a, "/setup").await, app.csrf(&b, "/setup").await);
    let code = app.state.setup.code().unwrap();
    let submit = |c: reqwest::Client, token: String, name: &'static str| {
        let (url, code) = (app.url("/setup"), code.clone());
        async move {
            c.post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("setup_code", code.as_str()),
                    ("username", name),
                    ("email", ""),
                    ("password", "a long passphrase"),
                    ("password_confirm", "a long passphrase"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (ra, rb) = tokio::join!(submit(a, ta, "first"), submit(b, tb, "second"));
    let mut statuses = [ra, rb];
    statuses.sort();
    assert_eq!(statuses, [303, 409]);
    assert_eq!(
        app.state.db.run(hallpass::db::users::count).await.unwrap(),
        1
    );

    // Through the service, eight at once on a fresh database, without hashing delays between them.
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..8 {
        let state = app.state.clone();
        tasks.push(tokio::spawn(async move {
            let admin = hallpass::service::accounts::NewAdmin::parse(
                &format!("admin{i}"),
                "",
                "a long passphrase",
                "a long passphrase",
            )
            .unwrap();
            hallpass::service::accounts::create_first_admin(
                &state.db,
                &state.hasher,
                admin,
                hallpass::service::Actor::system("test"),
            )
            .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => created += 1,
            Err(hallpass::service::ServiceError::Refused(
                hallpass::service::Refusal::AlreadySetUp,
            )) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        app.state.db.run(hallpass::db::users::count).await.unwrap(),
        1
    );
}

async fn user_count(app: &TestApp) -> i64 {
    app.state.db.run(hallpass::db::users::count).await.unwrap()
}

/// The wizard's form with `code`, as `client` posts it to `url` (token from a GET of `/setup`).
async fn post_setup(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    code: &str,
    username: &str,
) -> reqwest::Response {
    c.post(url)
        .form(&[
            ("csrf_token", token),
            ("setup_code", code),
            ("username", username),
            ("email", ""),
            ("password", "a long passphrase"),
            ("password_confirm", "a long passphrase"),
        ])
        .send()
        .await
        .unwrap()
}

async fn loopback_clients_need_the_setup_code_too(db: Db) {
    // A loopback peer without forwarding headers proves nothing: a reverse proxy on this host
    // (see the nginx test) or a DNS-rebinding page in the owner's browser looks the same.
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let token = app.csrf(&c, "/setup").await;
    let r = post_setup(&c, &app.url("/setup"), &token, "", "intruder").await;
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("id=\"setup_code-error\"") && body.contains("hallpass setup-code"),
        "{body}"
    );
    assert_eq!(user_count(&app).await, 0);
}

async fn a_rebinding_page_cannot_claim_the_instance(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.server.allowed_hosts = vec!["hallpass.lan".into()];
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.1".into()];
        },
        false,
    )
    .await
    else {
        return;
    };
    let port = app.addr.port();
    let evil = format!("attacker.example:{port}");
    let c = app.client();
    // The page as the rebound name shows it: refused, with the setting to change.
    let r = c
        .get(app.url("/setup"))
        .header("Host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("server.allowed_hosts") && body.contains("attacker.example"),
        "{body}"
    );
    assert!(
        !body.contains("name=\"username\""),
        "no form for a foreign name"
    );
    // The POST of the attack: the page's token, the attacker's Origin and Host, no code.
    let token = app.csrf(&c, "/setup").await;
    let r = c
        .post(app.url("/setup"))
        .header("Host", &evil)
        .header("Origin", format!("http://{evil}"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", ""),
            ("username", "mallory"),
            ("password", "a long passphrase"),
            ("password_confirm", "a long passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(user_count(&app).await, 0);
    // The JSON API says so in its own format.
    let r = c
        .get(app.url("/api/auth/me"))
        .header("Host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "HOST_NOT_ALLOWED");
    // A listed name, localhost and addresses are answered; health checks always are.
    for host in [
        format!("hallpass.lan:{port}"),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let r = c
            .get(app.url("/setup"))
            .header("Host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
    let r = c
        .get(app.url("/healthz"))
        .header("Host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Once set up: forward-auth headers sent by a rebinding page (from a browser on the proxy
    // host, a trusted peer) sign nobody in.
    let code = app.state.setup.code().unwrap();
    let r = post_setup(&c, &app.url("/setup"), &token, &code, "owner").await;
    assert_eq!(r.status(), 303);
    let r = reqwest::Client::new()
        .get(app.url("/api/auth/me"))
        .header("Host", &evil)
        .header("Remote-User", "owner")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

async fn wrong_setup_codes_are_rate_limited(db: Db) {
    let Some(app) = TestApp::start(db, |c| c.auth.rate_limit.max_failures_per_ip = 3, false).await
    else {
        return;
    };
    let c = app.client();
    let token = app.csrf(&c, "/setup").await;
    let url = app.url("/setup");
    for i in 0..3 {
        let r = post_setup(&c, &url, &token, &format!("WRNG-COD{i}"), "guess").await;
        assert_eq!(r.status(), 422, "attempt {i}");
    }
    // Past the limit even the right code is refused until the window closes.
    let code = app.state.setup.code().unwrap();
    let r = post_setup(&c, &url, &token, &code, "guess").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"setup_code-error\""), "{body}");
    assert!(body.contains("value=\"guess\""), "input kept");
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(audit_events(&app, "rate_limit.setup").await.len(), 1);
    // Another address is not affected: it claims the instance with the code.
    let other = crate::support::client_from("127.0.0.2");
    let token = app.csrf(&other, "/setup").await;
    let r = post_setup(&other, &url, &token, &code, "owner").await;
    assert_eq!(r.status(), 303);
    assert_eq!(user_count(&app).await, 1);
}

async fn behind_a_bare_nginx_proxy_pass_the_wizard_needs_the_code(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    // `proxy_pass` alone: nginx sends no X-Forwarded-* and `Host: 127.0.0.1:PORT`, so every
    // visitor arrives from 127.0.0.1 looking exactly like the owner at the console.
    let Some(nginx) = Nginx::start(app.addr, "") else {
        return;
    };
    let c = app.client();
    let page = c.get(nginx.url("/setup")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("name=\"setup_code\""), "{page}");
    let token = csrf_in(&page).unwrap();
    let r = post_setup(&c, &nginx.url("/setup"), &token, "", "intruder").await;
    assert_eq!(r.status(), 422);
    assert_eq!(user_count(&app).await, 0);
    let r = post_setup(&c, &nginx.url("/setup"), &token, "ABCD-EFGH", "intruder").await;
    assert_eq!(r.status(), 422);
    assert_eq!(user_count(&app).await, 0);
    // The owner, with the code from the log, through the same proxy.
    let code = app.state.setup.code().unwrap();
    let r = post_setup(&c, &nginx.url("/setup"), &token, &code, "owner").await;
    assert_eq!(r.status(), 303);
    let me: serde_json::Value = c
        .get(nginx.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "owner");
    assert_eq!(me["role"], "admin");
}

/// A short password typed differently twice gets both messages in one answer (not the
/// mismatch only once the length is fixed); the code typed in lowercase with a space for
/// the hyphen is the code; so is the code without its hyphen.
async fn every_mistake_at_once_and_the_code_as_people_type_it(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let code = app.state.setup.code().unwrap();
    let spaced = code.replace('-', " ").to_lowercase();
    let token = app.csrf(&c, "/setup").await;
    let r = c
        .post(app.url("/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", spaced.as_str()),
            ("username", "root"),
            ("password", "short"),
            ("password_confirm", "shorter"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"password-error\">Password must be at least 8 characters long."),
        "{page}"
    );
    assert!(
        page.contains("id=\"password_confirm-error\">The two passwords do not match."),
        "{page}"
    );
    assert!(
        !page.contains("id=\"setup_code-error\""),
        "the code was right: {page}"
    );

    let token = csrf_in(&page).unwrap();
    let r = post_setup(
        &c,
        &app.url("/setup"),
        &token,
        &code.replace('-', ""),
        "root",
    )
    .await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(user_count(&app).await, 1);
}
