//! Single sign-on against a real OpenID provider (`tests/oidc-idp`, npm `oidc-provider`) on
//! loopback: the whole browser round trip over HTTP, on both databases.

use hallpass::config::Config;
use hallpass::domain::sso::{Policy, Provider, Source};
use secrecy::SecretString;

use crate::support::idp::{ALICE, BOB, CAROL, DefaultUser, Idp, Tamper, USERINFO_ONLY_CLAIM};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, csrf_in, logs, sql, user};

const CLIENT_ID: &str = "hallpass";
const CLIENT_SECRET: &str = "idp-client-secret-0123456789";

fn provider(id: &str, issuer: &str, policy: Policy, secret: Option<&str>) -> Provider {
    Provider {
        id: id.to_owned(),
        label: format!("{id} IdP"),
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: secret.map(|s| SecretString::from(s.to_owned())),
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

/// An app with the admin and an IdP whose client expects provider `home`, which the test
/// then creates in the admin UI.
async fn start_for_ui_provider(db: Db) -> Option<(TestApp, Idp)> {
    logs::capture();
    let idp = Idp::start(&Idp::default_users()).await;
    let app = TestApp::with_admin(db).await?;
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/home/callback")],
    )
    .await;
    Some((app, idp))
}

/// An app with one environment provider `idp` (confidential client) and its IdP.
async fn start(
    db: Db,
    policy: Policy,
    admin: bool,
    tweak: impl FnOnce(&mut Config),
) -> Option<(TestApp, Idp)> {
    logs::capture();
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let app = TestApp::start(
        db,
        move |c| {
            c.sso
                .providers
                .push(provider("idp", &issuer, policy, Some(CLIENT_SECRET)));
            tweak(c);
        },
        admin,
    )
    .await?;
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/idp/callback")],
    )
    .await;
    Some((app, idp))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on {}", r.status()))
        .to_owned()
}

/// The IdP's answer to a sign-in started at `start_path` (a callback URL), not yet followed.
async fn via_idp(
    app: &TestApp,
    idp: &Idp,
    client: &reqwest::Client,
    start: reqwest::RequestBuilder,
    who: DefaultUser,
) -> String {
    let r = start.send().await.unwrap();
    assert_eq!(r.status(), 303, "starting the sign-in: {}", r.status());
    let to_idp = location(&r);
    assert!(
        to_idp.starts_with(&idp.issuer),
        "expected a redirect to the IdP, got {to_idp}"
    );
    let _ = (app, client);
    idp.authorize(&to_idp, who.username, who.password).await
}

/// Signs in with SSO as `who` through provider `id`; returns the callback's response.
async fn sso_login(
    app: &TestApp,
    idp: &Idp,
    client: &reqwest::Client,
    id: &str,
    who: DefaultUser,
) -> reqwest::Response {
    let start = client.get(app.url(&format!("/api/auth/oidc/{id}/login?next=/account")));
    let callback = via_idp(app, idp, client, start, who).await;
    assert!(
        callback.starts_with(&app.url(&format!("/api/auth/oidc/{id}/callback"))),
        "{callback}"
    );
    client.get(callback).send().await.unwrap()
}

async fn me(app: &TestApp, client: &reqwest::Client) -> Option<serde_json::Value> {
    let r = client.get(app.url("/api/auth/me")).send().await.unwrap();
    (r.status() == 200).then(|| futures_json(r))?.await
}

async fn futures_json(r: reqwest::Response) -> Option<serde_json::Value> {
    r.json().await.ok()
}

async fn login_page(app: &TestApp, query: &str) -> String {
    app.client()
        .get(app.url(&format!("/login{query}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Verify & Link as the signed-in `client` (an admin) with `who` at the IdP.
async fn verify_and_link(
    app: &TestApp,
    idp: &Idp,
    client: &reqwest::Client,
    id: &str,
    who: DefaultUser,
) -> reqwest::Response {
    let links = format!("/admin/sso/providers/{id}/links");
    let token = app.csrf(client, &links).await;
    let start = client
        .post(app.url(&format!("/admin/sso/providers/{id}/verify")))
        .form(&[("csrf_token", token.as_str())]);
    let callback = via_idp(app, idp, client, start, who).await;
    client.get(callback).send().await.unwrap()
}

async fn link_subject(
    app: &TestApp,
    client: &reqwest::Client,
    id: &str,
    sub: &str,
    username: &str,
) -> reqwest::Response {
    let path = format!("/admin/sso/providers/{id}/links");
    let token = app.csrf(client, &path).await;
    client
        .post(app.url(&path))
        .form(&[
            ("csrf_token", token.as_str()),
            ("subject", sub),
            ("username", username),
        ])
        .send()
        .await
        .unwrap()
}

async fn set_modes(
    app: &TestApp,
    client: &reqwest::Client,
    sso: bool,
    local: bool,
) -> reqwest::Response {
    let token = app.csrf(client, "/admin/sso").await;
    let mut form = vec![("csrf_token", token)];
    if sso {
        form.push(("sso_enabled", "on".into()));
    }
    if local {
        form.push(("local_login_enabled", "on".into()));
    }
    client
        .post(app.url("/admin/sso/modes"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

both_databases!(
    link_policy_refuses_an_unlinked_identity_and_logs_it,
    verify_and_link_proves_the_connection_and_keeps_the_session,
    approve_policy_creates_a_pending_account,
    auto_policy_creates_an_active_user_and_never_merges_by_email,
    first_identity_on_an_empty_instance_becomes_admin,
    pinned_bootstrap_admin_wins_over_first_come,
    two_providers_at_once,
    tampered_callbacks_fail_safely,
    tampered_id_tokens_fail_safely,
    rotated_keys_are_fetched_again,
    public_client_with_pkce_only,
    password_sign_in_can_only_go_off_when_an_admin_can_use_sso,
    unlinking_keeps_a_way_in,
    break_glass_override_forces_sso_off,
    ui_provider_wizard_test_discovery_secret_and_revert,
    changed_issuer_no_longer_matches_old_links,
    redirect_uri_comes_from_public_url_trusted_proxy_or_host,
    a_user_links_and_unlinks_their_own_identity,
    hiding_the_last_provider_brings_the_password_form_back,
    the_dev_bypass_admin_does_not_count_as_the_first_admin,
    a_sign_in_older_than_ten_minutes_is_refused,
    concurrent_deliveries_of_one_callback_sign_in_once,
    oversized_provider_answers_fail_cleanly,
    tokens_for_another_party_or_from_the_future_are_refused,
    discovery_problems_say_misconfigured_and_the_banner_page_is_200,
    starting_a_sign_in_writes_no_session_row,
);

/// A started sign-in is bound to the browser by its CSRF nonce cookie, not by a session: a
/// script hammering the SSO button costs no session rows (issue 9, point 13's concern).
async fn starting_a_sign_in_writes_no_session_row(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    for _ in 0..20 {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/api/auth/oidc/idp/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let cookies: Vec<&str> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert!(
            cookies.iter().any(|c| c.starts_with("hallpass_csrf=")),
            "{cookies:?}"
        );
        assert!(
            !cookies.iter().any(|c| c.starts_with("hallpass_session=")),
            "{cookies:?}"
        );
    }
    assert_eq!(crate::support::count_sessions(&app, None).await, 0);
    // The round trip still works, and signing in writes exactly one session.
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "idp", ALICE).await),
        "/account"
    );
    assert_eq!(crate::support::count_sessions(&app, None).await, 1);
}

/// Bob's stored sessions.
async fn bob_sessions(app: &TestApp) -> usize {
    sql(
        app,
        "UPDATE sessions SET data = data WHERE user_id IN (SELECT id FROM users WHERE username_key = 'bob')",
    )
    .await
}

async fn bob_exists(app: &TestApp) -> bool {
    sql(
        app,
        "UPDATE users SET display_name = display_name WHERE username_key = 'bob'",
    )
    .await
        == 1
}

/// Point 2 of issue 9: six deliveries of one callback at once, with the same cookie, to a
/// provider that would redeem the code six times. The flow is consumed before the code is
/// exchanged: one token request, one sign-in, one session.
async fn concurrent_deliveries_of_one_callback_sign_in_once(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    idp.set_tamper(Tamper::CodeReuse).await;
    let c = app.client();
    let begin = c.get(app.url("/api/auth/oidc/idp/login?next=/account"));
    let callback = via_idp(&app, &idp, &c, begin, BOB).await;
    let before = idp.counters().await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(6));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (c, url, barrier) = (c.clone(), callback.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let r = c.get(url).send().await.unwrap();
                (r.status().as_u16(), location(&r))
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let signed_in = outcomes.iter().filter(|(_, l)| l == "/account").count();
    let refused = outcomes
        .iter()
        .filter(|(s, l)| *s == 303 && l == "/login?sso_error=expired")
        .count();
    assert_eq!((signed_in, refused), (1, 5), "{outcomes:?}");
    let after = idp.counters().await;
    assert_eq!(
        after.token - before.token,
        1,
        "only one delivery may reach the token endpoint"
    );
    assert_eq!(bob_sessions(&app).await, 1, "exactly one session row");
    assert_eq!(me(&app, &c).await.unwrap()["username"], "bob");
    // The flow is gone: a seventh delivery is refused too, without asking the provider.
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
    assert_eq!(idp.counters().await.token, after.token);
    assert_eq!(
        sql(&app, "DELETE FROM oidc_flows").await,
        0,
        "no flow left behind"
    );
}

/// Point 3 of issue 9: every answer of the provider is read through one client that stops at
/// 1 MiB — discovery, JWKS, token and userinfo, each tested — with a log line naming the URL,
/// and the person sees a banner, never a 500.
async fn oversized_provider_answers_fail_cleanly(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |c| {
        // A claim only the oversized userinfo answer has: used only if that answer is read.
        c.sso.providers[0].email_claim = USERINFO_ONLY_CLAIM.into();
    })
    .await
    else {
        return;
    };
    let cut_off = |path: &str| {
        logs::lines_with(&format!("url={}{path}", idp.issuer))
            .into_iter()
            .filter(|l| l.contains("exceeds the size limit"))
            .count()
    };
    // Discovery and the key set are fetched when the first sign-in starts.
    for (mode, path) in [
        (Tamper::BigDiscovery, "/.well-known/openid-configuration"),
        (Tamper::BigJwks, "/jwks"),
    ] {
        idp.set_tamper(mode).await;
        let c = app.client();
        let r = c
            .get(app.url("/api/auth/oidc/idp/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{mode:?}");
        assert_eq!(location(&r), "/login?sso_error=misconfigured", "{mode:?}");
        assert!(cut_off(path) >= 1, "{mode:?}: no log line for {path}");
        let page = c
            .get(app.url("/login?sso_error=misconfigured"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("misconfigured"));
    }
    // The admin's Test discovery says the same.
    idp.set_tamper(Tamper::BigDiscovery).await;
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let html = admin
        .post(app.url("/admin/sso/new"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("id", "home"),
            ("issuer", idp.issuer.as_str()),
            ("client_id", CLIENT_ID),
            ("action", "test"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Misconfigured: The provider")
            && html.contains("discovery document is larger than 1024 KiB"),
        "{html}"
    );
    // The token response.
    idp.set_tamper(Tamper::BigToken).await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/login?sso_error=failed");
    assert!(me(&app, &c).await.is_none());
    assert!(
        !bob_exists(&app).await,
        "no account from an oversized token answer"
    );
    assert!(cut_off("/token") >= 1, "no log line for /token");
    // Userinfo: the oversized answer is not used (as any failed userinfo request, the ID
    // token's claims stand alone), so its claim never reaches the account.
    idp.set_tamper(Tamper::BigUserinfo).await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
    let body = me(&app, &c).await.unwrap();
    assert_eq!(body["username"], "bob");
    assert!(body["email"].is_null(), "{body}");
    assert!(cut_off("/me") >= 1, "no log line for /me");
}

/// Points 4 and 5 of issue 9: an ID token issued to another client (`azp`) or "issued" ten
/// years from now is refused; a provider clock a little ahead is tolerated, as configured.
async fn tokens_for_another_party_or_from_the_future_are_refused(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    for (t, log) in [
        (Tamper::Azp, "the token was issued to another client"),
        (Tamper::IatAhead(10 * 365 * 86_400), "s in the future"),
    ] {
        idp.set_tamper(t).await;
        let c = app.client();
        let r = sso_login(&app, &idp, &c, "idp", BOB).await;
        assert_eq!(location(&r), "/login?sso_error=failed", "{t:?}");
        assert!(me(&app, &c).await.is_none(), "{t:?} signed someone in");
        assert!(!logs::lines_with(log).is_empty(), "{t:?}: no log line");
    }
    assert!(!bob_exists(&app).await);
    // Two minutes ahead is within the default skew of five minutes.
    idp.set_tamper(Tamper::IatAhead(120)).await;
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "idp", BOB).await),
        "/account"
    );
    // With `auth.oidc.clock_skew = "1m"` it is not.
    let Some((app, idp)) = start(db, Policy::Auto, true, |c| {
        c.auth.oidc.clock_skew = hallpass::config::HumanDuration::secs(60);
    })
    .await
    else {
        return;
    };
    idp.set_tamper(Tamper::IatAhead(120)).await;
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "idp", BOB).await),
        "/login?sso_error=failed"
    );
    assert!(!bob_exists(&app).await);
}

/// Point 6 of issue 9: a wrong issuer or a discovery document without the needed endpoints
/// is a configuration problem, and the banner and the admin's Test discovery say so; only
/// a provider that does not answer is "unreachable". The sign-in page with a banner is 200.
async fn discovery_problems_say_misconfigured_and_the_banner_page_is_200(db: Db) {
    logs::capture();
    let idp = Idp::start(&Idp::default_users()).await;
    let issuers = [
        ("mismatch", idp.issuer.replace("127.0.0.1", "localhost")),
        ("missing", idp.broken_discovery_issuer()),
        ("down", "http://127.0.0.1:9".to_owned()),
    ];
    let configured = issuers.clone();
    let Some(app) = TestApp::start(
        db,
        move |c| {
            for (id, issuer) in &configured {
                c.sso
                    .providers
                    .push(provider(id, issuer, Policy::Link, Some(CLIENT_SECRET)));
            }
        },
        true,
    )
    .await
    else {
        return;
    };
    let admin = app.admin_client().await;
    for (id, issuer) in &issuers {
        let expected = if *id == "down" {
            "unreachable"
        } else {
            "misconfigured"
        };
        let c = app.client();
        let r = c
            .get(app.url(&format!("/api/auth/oidc/{id}/login")))
            .send()
            .await
            .unwrap();
        let banner = location(&r);
        assert_eq!(banner, format!("/login?sso_error={expected}"), "{id}");
        let page = c.get(app.url(&banner)).send().await.unwrap();
        assert_eq!(page.status(), 200, "{id}");
        let html = page.text().await.unwrap();
        let says_unreachable = html.contains("cannot be reached right now");
        assert_eq!(says_unreachable, *id == "down", "{id}: {html}");
        assert_eq!(
            html.contains("is misconfigured"),
            *id != "down",
            "{id}: {html}"
        );
        // The admin's Test discovery (of an environment provider: its own issuer).
        let path = format!("/admin/sso/providers/{id}");
        let token = app.csrf(&admin, &path).await;
        let result = admin
            .post(app.url(&path))
            .header("HX-Request", "true")
            .form(&[
                ("csrf_token", token.as_str()),
                ("issuer", issuer.as_str()),
                ("action", "test"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            result.contains("Misconfigured"),
            *id != "down",
            "{id}: {result}"
        );
        assert_eq!(
            result.contains("unreachable"),
            *id == "down",
            "{id}: {result}"
        );
    }
    // Other banners answer 200 as well.
    let r = app
        .client()
        .get(app.url("/login?sso_error=failed"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn a_sign_in_older_than_ten_minutes_is_refused(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    let c = app.client();
    let begin = c.get(app.url("/api/auth/oidc/idp/login"));
    let callback = via_idp(&app, &idp, &c, begin, BOB).await;
    // Age the stored flow by eleven minutes.
    let changed = sql(
        &app,
        "UPDATE oidc_flows SET created_at = created_at - 660, expires_at = expires_at - 660",
    )
    .await;
    assert_eq!(changed, 1);
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
    assert!(me(&app, &c).await.is_none());
}

async fn the_dev_bypass_admin_does_not_count_as_the_first_admin(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, false, |c| {
        c.env_auth = hallpass::env_auth::EnvAuth::from_env(|k| {
            (k == "HALLPASS_AUTH_BYPASS").then(|| "1".to_owned())
        })
        .unwrap();
    })
    .await
    else {
        return;
    };
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
    let bob = user(&app, "bob").await;
    assert_eq!(
        (bob.role.as_str(), bob.status.as_str()),
        ("admin", "active")
    );
}

async fn hiding_the_last_provider_brings_the_password_form_back(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("id", "home"),
            ("issuer", "https://idp.example.com"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        link_subject(&app, &admin, "home", "admin-sub", ADMIN)
            .await
            .status(),
        303
    );
    assert_eq!(set_modes(&app, &admin, true, false).await.status(), 303);
    assert!(!login_page(&app, "").await.contains("password-form"));
    let token = app.csrf(&admin, "/admin/sso").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/enabled"))
        .form(&[("csrf_token", token.as_str()), ("enabled", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = login_page(&app, "").await;
    assert!(
        page.contains("password-form") && !page.contains("sso-home"),
        "{page}"
    );
    let c = app.client();
    assert_eq!(app.login(&c, ADMIN, ADMIN_PASSWORD).await.status(), 303);
}

async fn a_user_links_and_unlinks_their_own_identity(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, true, |_| {}).await else {
        return;
    };
    // A local user with a password links their IdP identity from the account page.
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/users/new").await;
    admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "dana"),
            ("role", "user"),
            ("password_mode", "set"),
            ("password", "dana-password-123"),
        ])
        .send()
        .await
        .unwrap();
    let dana = app.client();
    assert_eq!(
        app.login(&dana, "dana", "dana-password-123").await.status(),
        303
    );
    let token = app.csrf(&dana, "/account").await;
    let start = dana
        .post(app.url("/account/identities/idp/link"))
        .form(&[("csrf_token", token.as_str())]);
    let callback = via_idp(&app, &idp, &dana, start, CAROL).await;
    let r = dana.get(callback).send().await.unwrap();
    assert_eq!(location(&r), "/account?linked=idp");
    let page = dana
        .get(app.url("/account?linked=idp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(CAROL.sub) && page.contains("verified and linked"),
        "{page}"
    );
    // Carol's IdP identity now signs in as dana.
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "idp", CAROL).await),
        "/account"
    );
    assert_eq!(me(&app, &c).await.unwrap()["username"], "dana");
    // Dana unlinks it (after a confirmation page); the IdP identity is refused again.
    let at = page.find("/account/identities/").unwrap() + "/account/identities/".len();
    let id: String = page[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let path = format!("/account/identities/{id}/unlink");
    let confirm = dana
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("Unlink your"), "{confirm}");
    let token = csrf_in(&confirm).unwrap();
    let r = dana
        .post(app.url(&path))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account?notice=unlinked");
    assert!(
        me(&app, &dana).await.is_some(),
        "her own session carries on"
    );
    assert!(me(&app, &c).await.is_none(), "her other sessions ended");
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "idp", CAROL).await),
        "/login?sso_error=not_linked"
    );
    // Nobody else's identity can be unlinked from the account page.
    let admin_page = admin.get(app.url("/account")).send().await.unwrap();
    assert_eq!(admin_page.status(), 200);
    let r = admin.get(app.url(&path)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn redirect_uri_comes_from_public_url_trusted_proxy_or_host(db: Db) {
    let redirect_of = |r: &reqwest::Response| -> String {
        url::Url::parse(&location(r))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let forwarded = |app: &TestApp| {
        app.client()
            .get(app.url("/api/auth/oidc/idp/login"))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "auth.example.com")
    };
    // Untrusted peer: the forwarding headers are ignored, Host is used.
    let Some((app, _idp)) = start(db, Policy::Link, true, |_| {}).await else {
        return;
    };
    let r = forwarded(&app).send().await.unwrap();
    assert_eq!(redirect_of(&r), app.url("/api/auth/oidc/idp/callback"));
    // Trusted peer: they are believed.
    let Some((app, _idp)) = start(db, Policy::Link, true, |c| {
        c.server.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await
    else {
        return;
    };
    let r = forwarded(&app).send().await.unwrap();
    assert_eq!(
        redirect_of(&r),
        "https://auth.example.com/api/auth/oidc/idp/callback"
    );
    // public_url wins over everything.
    let Some((app, _idp)) = start(db, Policy::Link, true, |c| {
        c.server.trusted_proxies = "127.0.0.1".parse().unwrap();
        c.server.public_url = Some("https://hallpass.example.net".parse().unwrap());
    })
    .await
    else {
        return;
    };
    let r = forwarded(&app).send().await.unwrap();
    assert_eq!(
        redirect_of(&r),
        "https://hallpass.example.net/api/auth/oidc/idp/callback"
    );
}

async fn link_policy_refuses_an_unlinked_identity_and_logs_it(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, true, |_| {}).await else {
        return;
    };
    let page = login_page(&app, "").await;
    assert!(page.contains("Sign in with idp IdP"), "{page}");
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/login?sso_error=not_linked");
    assert!(me(&app, &c).await.is_none(), "nobody may be signed in");
    let page = login_page(&app, "?sso_error=not_linked").await;
    assert!(page.contains("not linked to an account here"), "{page}");
    let line = format!(
        "OIDC login rejected: no linked account for provider=idp sub={}",
        BOB.sub
    );
    assert!(
        !logs::lines_with(&line).is_empty(),
        "log line missing: {line}"
    );
    // Never matched by username or email: a local "bob" with the IdP's email stays separate.
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/users/new").await;
    let r = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "bob"),
            ("email", BOB.email),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/login?sso_error=not_linked");
    // No code, token or secret ends up in the log.
    assert!(!logs::all().contains(CLIENT_SECRET));
}

async fn verify_and_link_proves_the_connection_and_keeps_the_session(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, true, |_| {}).await else {
        return;
    };
    let admin = app.admin_client().await;
    let other_session = app.admin_client().await;
    let r = verify_and_link(&app, &idp, &admin, "idp", ALICE).await;
    assert_eq!(location(&r), "/admin/sso/providers/idp/links?linked=idp");
    // PKCE S256, a nonce and a state were sent.
    let auth = idp.last_authorization().await;
    assert_eq!(auth["code_challenge_method"], "S256", "{auth}");
    assert!(auth["nonce"].as_str().is_some_and(|n| n.len() >= 16));
    assert!(auth["state"].as_str().is_some_and(|s| s.len() >= 16));
    // This session carries on; the admin's other session ended (linking bumps the version).
    let page = admin
        .get(app.url("/admin/sso/providers/idp/links?linked=idp"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Verified"), "{html}");
    assert!(html.contains(ALICE.sub), "{html}");
    assert!(me(&app, &other_session).await.is_none());
    // Now the IdP identity signs in as the admin, with a new session id.
    let c = app.client();
    let _ = c.get(app.url("/login")).send().await.unwrap();
    let r = sso_login(&app, &idp, &c, "idp", ALICE).await;
    assert_eq!(location(&r), "/account");
    let body = me(&app, &c).await.unwrap();
    assert_eq!(body["username"], ADMIN);
    assert_eq!(body["role"], "admin");
    // Linking the same identity again is refused with a clear message.
    let r = link_subject(&app, &admin, "idp", ALICE.sub, ADMIN).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("already linked"));
}

async fn approve_policy_creates_a_pending_account(db: Db) {
    let Some((app, idp)) = start(db, Policy::Approve, true, |_| {}).await else {
        return;
    };
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(r.status(), 303);
    let u = user(&app, "bob").await;
    assert_eq!(u.status.as_str(), "pending");
    assert_eq!(u.role.as_str(), "user");
    assert!(u.password_hash.is_none(), "SSO accounts have no password");
    let home = c.get(app.url("/")).send().await.unwrap();
    let html = home.text().await.unwrap();
    assert!(html.to_lowercase().contains("awaiting approval"), "{html}");
    // The next sign-in finds the same account (no second one).
    let c2 = app.client();
    sso_login(&app, &idp, &c2, "idp", BOB).await;
    assert_eq!(
        sql(
            &app,
            "UPDATE users SET display_name = display_name WHERE username_key LIKE 'bob%'"
        )
        .await,
        1
    );
}

async fn auto_policy_creates_an_active_user_and_never_merges_by_email(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    // A local account already uses carol's username and email at the IdP.
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/users/new").await;
    admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "carol"),
            ("email", CAROL.email),
            ("role", "viewer"),
        ])
        .send()
        .await
        .unwrap();
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", CAROL).await;
    assert_eq!(location(&r), "/account");
    let body = me(&app, &c).await.unwrap();
    assert_ne!(
        body["username"], "carol",
        "must not be merged into the local carol"
    );
    assert_eq!(body["role"], "user");
    assert_eq!(body["status"], "active");
    assert!(
        body["email"].is_null(),
        "the email belongs to another account: {body}"
    );
    assert_eq!(user(&app, "carol").await.role.as_str(), "viewer");
    // Bob gets his own account with his claims.
    let c = app.client();
    sso_login(&app, &idp, &c, "idp", BOB).await;
    let body = me(&app, &c).await.unwrap();
    assert_eq!(body["username"], "bob");
    assert_eq!(body["email"], BOB.email);
    assert_eq!(body["display_name"], BOB.name);
    // The user table names the way in of an account without a password.
    let table = admin
        .get(app.url("/admin/users?q=bob"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(table.contains("SSO (idp)"), "{table}");
}

async fn first_identity_on_an_empty_instance_becomes_admin(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, false, |_| {}).await else {
        return;
    };
    // The setup wizard mentions SSO, and the login page is reachable before setup.
    let setup = app.client().get(app.url("/setup")).send().await.unwrap();
    assert!(setup.text().await.unwrap().contains("first person to"));
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
    let body = me(&app, &c).await.unwrap();
    assert_eq!(
        (body["username"].as_str(), body["role"].as_str()),
        (Some("bob"), Some("admin"))
    );
    // The second identity meets the `link` policy.
    let c2 = app.client();
    let r = sso_login(&app, &idp, &c2, "idp", ALICE).await;
    assert_eq!(location(&r), "/login?sso_error=not_linked");
    let setup = c.get(app.url("/setup")).send().await.unwrap();
    assert!(setup.text().await.unwrap().contains("setup-done"));
}

async fn pinned_bootstrap_admin_wins_over_first_come(db: Db) {
    let Some((app, idp)) = start(db, Policy::Approve, false, |c| {
        c.sso.bootstrap_admin =
            Some(hallpass::domain::sso::BootstrapPin::parse("idp:alice").unwrap());
    })
    .await
    else {
        return;
    };
    let c = app.client();
    sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(user(&app, "bob").await.status.as_str(), "pending");
    assert_eq!(user(&app, "bob").await.role.as_str(), "user");
    let c = app.client();
    sso_login(&app, &idp, &c, "idp", ALICE).await;
    let body = me(&app, &c).await.unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["status"], "active");
}

async fn two_providers_at_once(db: Db) {
    logs::capture();
    let one = Idp::start(&Idp::default_users()).await;
    let two = Idp::start(&Idp::default_users()).await;
    let (i1, i2) = (one.issuer.clone(), two.issuer.clone());
    let Some(app) = TestApp::start(
        db,
        move |c| {
            c.sso
                .providers
                .push(provider("one", &i1, Policy::Auto, Some(CLIENT_SECRET)));
            c.sso
                .providers
                .push(provider("two", &i2, Policy::Link, Some(CLIENT_SECRET)));
        },
        true,
    )
    .await
    else {
        return;
    };
    one.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/one/callback")],
    )
    .await;
    two.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/two/callback")],
    )
    .await;
    let page = login_page(&app, "").await;
    assert!(
        page.contains("id=\"sso-one\"") && page.contains("id=\"sso-two\""),
        "{page}"
    );
    // Same person, same subject, other provider: not the same identity.
    let c = app.client();
    sso_login(&app, &one, &c, "one", BOB).await;
    assert_eq!(me(&app, &c).await.unwrap()["username"], "bob");
    let c2 = app.client();
    let r = sso_login(&app, &two, &c2, "two", BOB).await;
    assert_eq!(location(&r), "/login?sso_error=not_linked");
    // Linked at the second provider too, bob uses either.
    let admin = app.admin_client().await;
    let r = link_subject(&app, &admin, "two", BOB.sub, "bob").await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let c3 = app.client();
    let r = sso_login(&app, &two, &c3, "two", BOB).await;
    assert_eq!(location(&r), "/account");
    assert_eq!(me(&app, &c3).await.unwrap()["username"], "bob");
    // A state minted for provider one is refused at provider two's callback.
    let c4 = app.client();
    let start = c4.get(app.url("/api/auth/oidc/one/login"));
    let callback = via_idp(&app, &one, &c4, start, BOB).await;
    let swapped = callback.replace("/oidc/one/", "/oidc/two/");
    let r = c4.get(swapped).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
}

async fn tampered_callbacks_fail_safely(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    // Wrong state.
    let c = app.client();
    let start = c.get(app.url("/api/auth/oidc/idp/login"));
    let callback = via_idp(&app, &idp, &c, start, BOB).await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let wrong = callback.replace(&state, "forged-state-value");
    let r = c.get(wrong).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
    // The genuine callback still works once…
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/");
    assert!(me(&app, &c).await.is_some());
    // …and replaying it (same state and code) is refused.
    let r = c.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
    // Another browser cannot use a callback minted for this one (state is bound to the session).
    let c2 = app.client();
    let start = c.get(app.url("/api/auth/oidc/idp/login"));
    let callback = via_idp(&app, &idp, &c, start, BOB).await;
    let r = c2.get(&callback).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=expired");
    assert!(me(&app, &c2).await.is_none());
    // Replayed code: a new flow of the same browser presenting an already-redeemed code.
    let start = c.get(app.url("/api/auth/oidc/idp/login"));
    let first = via_idp(&app, &idp, &c, start, BOB).await;
    assert_eq!(c.get(&first).send().await.unwrap().status(), 303);
    let code = url::Url::parse(&first)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let start = c.get(app.url("/api/auth/oidc/idp/login"));
    let second = via_idp(&app, &idp, &c, start, BOB).await;
    let fresh_code = url::Url::parse(&second)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let replay = second.replace(&fresh_code, &code);
    let r = c.get(replay).send().await.unwrap();
    assert_eq!(location(&r), "/login?sso_error=failed");
    // An error from the provider.
    let start = c2.get(app.url("/api/auth/oidc/idp/login"));
    let r = start.send().await.unwrap();
    let to_idp = url::Url::parse(&location(&r)).unwrap();
    let state = to_idp
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let r = c2
        .get(app.url(&format!(
            "/api/auth/oidc/idp/callback?error=access_denied&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login?sso_error=failed");
    // The codes never reached the log.
    assert!(!logs::all().contains(&code));
}

async fn tampered_id_tokens_fail_safely(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    for t in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Expired,
        Tamper::UnknownKey,
    ] {
        idp.set_tamper(t).await;
        let c = app.client();
        let r = sso_login(&app, &idp, &c, "idp", BOB).await;
        assert_eq!(location(&r), "/login?sso_error=failed", "{t:?}");
        assert!(me(&app, &c).await.is_none(), "{t:?} signed someone in");
    }
    assert_eq!(
        sql(
            &app,
            "UPDATE users SET display_name = display_name WHERE username_key = 'bob'"
        )
        .await,
        0,
        "no account may be created from a tampered token"
    );
    idp.set_tamper(Tamper::None).await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
}

async fn rotated_keys_are_fetched_again(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    let c = app.client();
    sso_login(&app, &idp, &c, "idp", BOB).await;
    assert!(me(&app, &c).await.is_some());
    // The discovery (with the old JWKS) is cached; the new kid makes Hallpass fetch it again.
    idp.rotate_key().await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
}

async fn public_client_with_pkce_only(db: Db) {
    logs::capture();
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let Some(app) = TestApp::start(
        db,
        move |c| {
            c.sso
                .providers
                .push(provider("pub", &issuer, Policy::Auto, None))
        },
        true,
    )
    .await
    else {
        return;
    };
    idp.add_client(CLIENT_ID, None, &[app.url("/api/auth/oidc/pub/callback")])
        .await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "pub", BOB).await;
    assert_eq!(location(&r), "/account");
    assert_eq!(me(&app, &c).await.unwrap()["username"], "bob");
}

async fn password_sign_in_can_only_go_off_when_an_admin_can_use_sso(db: Db) {
    let Some((app, idp)) = start(db, Policy::Link, true, |_| {}).await else {
        return;
    };
    let admin = app.admin_client().await;
    // A visitor who loaded the password form before it was switched off.
    let visitor = app.client();
    let visitor_token = app.csrf(&visitor, "/login").await;
    let r = set_modes(&app, &admin, true, false).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Link first"), "{html}");
    assert!(login_page(&app, "").await.contains("password-form"));
    // After linking the admin, it is allowed; the password form disappears and is refused.
    verify_and_link(&app, &idp, &admin, "idp", ALICE).await;
    let r = set_modes(&app, &admin, true, false).await;
    assert_eq!(r.status(), 303);
    let page = login_page(&app, "").await;
    assert!(
        !page.contains("password-form") && page.contains("sso-idp"),
        "{page}"
    );
    let r = visitor
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", visitor_token.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Password sign-in is turned off")
    );
    let r = app
        .client()
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "LOCAL_LOGIN_DISABLED");
    // SSO still works for the admin.
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", ALICE).await;
    assert_eq!(location(&r), "/account");
}

async fn unlinking_keeps_a_way_in(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    // Bob exists only through SSO: his only identity cannot be unlinked.
    let c = app.client();
    sso_login(&app, &idp, &c, "idp", BOB).await;
    let admin = app.admin_client().await;
    verify_and_link(&app, &idp, &admin, "idp", ALICE).await;
    let links = admin
        .get(app.url("/admin/sso/providers/idp/links"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id_of = |sub: &str| -> String {
        let at = links.find(sub).unwrap();
        let row = links[..at].rfind("id=\"link-").unwrap() + "id=\"link-".len();
        links[row..].split('"').next().unwrap().to_owned()
    };
    let (bob_link, alice_link) = (id_of(BOB.sub), id_of(ALICE.sub));
    let unlink = |id: String| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let path = format!("/admin/sso/identities/{id}/unlink");
            let token = app.csrf(&admin, &path).await;
            admin
                .post(app.url(&path))
                .form(&[("csrf_token", token.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let r = unlink(bob_link).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("only way to sign in"));
    assert!(
        me(&app, &c).await.is_some(),
        "a refused unlink changes nothing"
    );
    // The admin, SSO-only now, unlinks their own last identity: password sign-in comes back.
    assert_eq!(set_modes(&app, &admin, true, false).await.status(), 303);
    let r = unlink(alice_link).await;
    assert_eq!(
        location(&r),
        "/admin/sso/providers/idp/links?notice=unlinked_local_on"
    );
    assert!(login_page(&app, "").await.contains("password-form"));
    assert!(
        me(&app, &admin).await.is_some(),
        "the admin's own session carries on"
    );
}

async fn break_glass_override_forces_sso_off(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |c| c.sso.disable_override = true).await
    else {
        return;
    };
    // Stored settings say SSO only; the override wins without changing them.
    sql(
        &app,
        "UPDATE settings SET sso_enabled = 1, local_login_enabled = 0",
    )
    .await;
    let page = login_page(&app, "").await;
    assert!(page.contains("password-form"), "{page}");
    assert!(!page.contains("sso-idp"), "{page}");
    let c = app.client();
    let r = c
        .get(app.url("/api/auth/oidc/idp/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/login?sso_error=unavailable");
    let admin = app.admin_client().await;
    let html = admin
        .get(app.url("/admin/sso"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("override-banner"), "{html}");
    assert_eq!(
        sql(&app, "UPDATE settings SET updated_at = updated_at WHERE sso_enabled = 1 AND local_login_enabled = 0").await,
        1,
        "stored settings untouched"
    );
    drop(idp);
}

async fn ui_provider_wizard_test_discovery_secret_and_revert(db: Db) {
    let Some((app, idp)) = start_for_ui_provider(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let form = |issuer: &str, secret: &str, action: &str| {
        vec![
            ("csrf_token", token.clone()),
            ("id", "home".into()),
            ("label", "Home IdP".into()),
            ("issuer", issuer.into()),
            ("client_id", CLIENT_ID.into()),
            ("client_secret", secret.into()),
            ("scopes", "openid profile email".into()),
            ("policy", "auto".into()),
            ("action", action.into()),
        ]
    };
    let test = |issuer: String| {
        let f = form(&issuer, "", "test");
        let admin = admin.clone();
        let url = app.url("/admin/sso/new");
        async move {
            admin
                .post(url)
                .form(&f)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    // Test discovery: each outcome has its own message; the form keeps what was typed.
    let ok = test(idp.issuer.clone()).await;
    assert!(ok.contains("Discovery succeeded"), "{ok}");
    assert!(ok.contains("value=\"Home IdP\""), "input kept: {ok}");
    let status = test(idp.url("/nothing-here")).await;
    assert!(status.contains("HTTP 404"), "{status}");
    let mismatch = test(idp.issuer.replace("127.0.0.1", "localhost")).await;
    assert!(mismatch.contains("Issuer mismatch"), "{mismatch}");
    let missing = test(idp.broken_discovery_issuer()).await;
    assert!(missing.contains("missing required endpoints"), "{missing}");
    let closed = test("http://127.0.0.1:9".into()).await;
    assert!(closed.contains("unreachable"), "{closed}");
    // htmx asks for the fragment only.
    let frag = admin
        .post(app.url("/admin/sso/new"))
        .header("HX-Request", "true")
        .form(&form(&idp.issuer, "", "test"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(frag.starts_with("<div id=\"discovery-result\""), "{frag}");
    // A missing secret for a new confidential client is a field error, input kept.
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&form(&idp.issuer, "", "save"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("client_secret-error"), "{html}");
    // Save; the secret is encrypted at rest and never rendered.
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&form(&idp.issuer, CLIENT_SECRET, "save"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&r),
        "/admin/sso/providers/home/links?notice=created"
    );
    assert_eq!(
        sql(
            &app,
            format!(
                "UPDATE oidc_providers SET id = id WHERE client_secret LIKE '%{CLIENT_SECRET}%'"
            )
        )
        .await,
        0,
        "plaintext secret in the database"
    );
    let edit = admin
        .get(app.url("/admin/sso/providers/home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !edit.contains(CLIENT_SECRET) && edit.contains("a secret is stored"),
        "{edit}"
    );
    // Turn SSO on and sign in through the UI provider.
    assert_eq!(set_modes(&app, &admin, true, true).await.status(), 303);
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "home", BOB).await;
    assert_eq!(location(&r), "/account");
    // A bad save (wrong secret, new label) breaks sign-in…
    let token = app.csrf(&admin, "/admin/sso/providers/home").await;
    let mut f = form(&idp.issuer, "wrong-secret", "save");
    f[0].1 = token;
    f[2].1 = "Broken".into();
    let r = admin
        .post(app.url("/admin/sso/providers/home"))
        .form(&f)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/admin/sso/providers/home/links?notice=saved");
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "home", BOB).await;
    assert_eq!(location(&r), "/login?sso_error=failed");
    // …and Revert to previous restores it, turns SSO login off and clears the snapshot.
    let token = app.csrf(&admin, "/admin/sso/providers/home/revert").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/revert"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/admin/sso?notice=reverted");
    assert!(
        !login_page(&app, "").await.contains("sso-home"),
        "SSO must be off"
    );
    let edit = admin
        .get(app.url("/admin/sso/providers/home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        edit.contains("value=\"Home IdP\"") && !edit.contains("id=\"revert\""),
        "{edit}"
    );
    assert_eq!(set_modes(&app, &admin, true, true).await.status(), 303);
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "home", BOB).await;
    assert_eq!(location(&r), "/account", "the restored secret works again");
    let token = app.csrf(&admin, "/admin/sso").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/revert"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "one step of undo only");
    assert!(!logs::all().contains(CLIENT_SECRET));
}

async fn changed_issuer_no_longer_matches_old_links(db: Db) {
    let Some((app, idp)) = start_for_ui_provider(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let save = |issuer: String, token: String, path: &'static str| {
        let admin = admin.clone();
        let url = app.url(path);
        async move {
            admin
                .post(url)
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("id", "home"),
                    ("issuer", issuer.as_str()),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("policy", "link"),
                    ("action", "save"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        save(idp.issuer.clone(), token, "/admin/sso/new")
            .await
            .status(),
        303
    );
    let r = link_subject(&app, &admin, "home", BOB.sub, ADMIN).await;
    assert_eq!(r.status(), 303);
    assert_eq!(set_modes(&app, &admin, true, true).await.status(), 303);
    let c = app.client();
    assert_eq!(
        location(&sso_login(&app, &idp, &c, "home", BOB).await),
        "/account"
    );
    // Same IdP under another spelling of its URL = another issuer: the old link is flagged
    // and no longer signs anyone in.
    let token = app.csrf(&admin, "/admin/sso/providers/home").await;
    let other = idp.issuer.replace("127.0.0.1", "localhost");
    save(other, token, "/admin/sso/providers/home").await;
    let links = admin
        .get(app.url("/admin/sso/providers/home/links"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(links.contains("issuer changed"), "{links}");
    let _ = csrf_in(&links);
}

both_databases!(the_callback_repeats_the_redirect_uri_stored_at_the_start);

/// Issue 10, point 2: the token request repeats the redirect URI of the authorization request,
/// as stored with the flow when the sign-in started, never one computed again from the
/// callback's own `Host`. The callback here arrives under another name for the same server
/// (`localhost` instead of `127.0.0.1`); the IdP refuses a token request whose redirect URI
/// differs from the authorization request's, so recomputing it would end in `failed`.
async fn the_callback_repeats_the_redirect_uri_stored_at_the_start(db: Db) {
    let Some((app, idp)) = start(db, Policy::Auto, true, |_| {}).await else {
        return;
    };
    let c = app.client();
    let begin = c.get(app.url("/api/auth/oidc/idp/login?next=/account"));
    let callback = via_idp(&app, &idp, &c, begin, BOB).await;
    assert!(
        callback.starts_with(&app.url("/api/auth/oidc/idp/callback")),
        "{callback}"
    );
    let other_name = format!("localhost:{}", app.addr.port());
    let r = c
        .get(&callback)
        .header("Host", other_name)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/account", "signed in, not refused");
    assert_eq!(me(&app, &c).await.unwrap()["username"], "bob");
}
