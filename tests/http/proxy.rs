//! Forward-auth: identity headers believed only from a trusted TCP peer. The trusted proxy
//! is the test client bound to 127.0.0.2; 127.0.0.1 plays everyone else.

use std::net::{IpAddr, Ipv4Addr};

use hallpass::config::Config;
use reqwest::redirect::Policy;

use crate::support::{ADMIN, Db, TestApp, csrf_in, sql, user};

const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

fn proxy() -> reqwest::Client {
    from(PROXY_IP)
}

fn outsider() -> reqwest::Client {
    from(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

async fn start(db: Db, policy: &str, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let policy = policy.to_owned();
    TestApp::start(
        db,
        move |c| {
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.2".into()];
            c.auth.proxy.policy = policy;
            tweak(c);
        },
        true,
    )
    .await
}

async fn me_as(app: &TestApp, c: &reqwest::Client, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = c.get(app.url("/api/auth/me"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

both_databases!(
    spoofed_headers_from_an_untrusted_peer_are_ignored,
    auto_policy_creates_updates_and_maps_groups,
    link_policy_needs_an_explicit_link,
    an_existing_local_account_is_never_merged,
    missing_header_and_refusals_show_a_banner,
    nobody_signs_in_by_header_before_setup,
    presets_switch_the_header_names,
    diagnostics_show_what_arrived,
    proxy_signed_in_writes_need_the_csrf_token,
    group_mapping_keeps_the_last_admin,
);

async fn spoofed_headers_from_an_untrusted_peer_are_ignored(db: Db) {
    let Some(app) = start(db, "auto", |_| {}).await else {
        return;
    };
    let spoof = [
        ("Remote-User", "mallory"),
        ("Remote-Groups", "admins"),
        ("X-Forwarded-For", "127.0.0.2"),
    ];
    let r = me_as(&app, &outsider(), &spoof).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        sql(
            &app,
            "UPDATE users SET role = role WHERE username_key = 'mallory'"
        )
        .await,
        0,
        "no account may be created from untrusted headers"
    );
    // The untrusted peer's headers also do not override a real session.
    let admin = app.admin_client().await;
    let r = admin
        .get(app.url("/api/auth/me"))
        .header("Remote-User", "mallory")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["username"], ADMIN);
    assert_eq!(body["auth_method"], "session");
}

async fn auto_policy_creates_updates_and_maps_groups(db: Db) {
    let Some(app) = start(db, "auto", |c| {
        c.auth.proxy.admin_groups = vec!["ops".into()];
        c.auth.proxy.viewer_groups = vec!["guests".into()];
    })
    .await
    else {
        return;
    };
    let p = proxy();
    let r = me_as(
        &app,
        &p,
        &[
            ("Remote-User", "bob"),
            ("Remote-Email", "bob@example.com"),
            ("Remote-Name", "Bob Proxy"),
            ("Remote-Groups", "family,guests"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["username"], "bob");
    assert_eq!(body["auth_method"], "proxy");
    assert_eq!(body["role"], "viewer");
    assert_eq!(body["email"], "bob@example.com");
    // The next request with another email and the ops group: updated and promoted.
    let r = me_as(
        &app,
        &p,
        &[
            ("Remote-User", "bob"),
            ("Remote-Email", "bob@new.example.com"),
            ("Remote-Groups", "ops"),
        ],
    )
    .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["role"], "admin");
    assert_eq!(body["email"], "bob@new.example.com");
    // A proxy-created account has no password and cannot use the password form.
    assert!(user(&app, "bob").await.password_hash.is_none());
    let c = app.client();
    assert_eq!(app.login(&c, "bob", "anything-at-all").await.status(), 401);
}

async fn link_policy_needs_an_explicit_link(db: Db) {
    let Some(app) = start(db, "link", |_| {}).await else {
        return;
    };
    let p = proxy();
    assert_eq!(
        me_as(&app, &p, &[("Remote-User", "carol")]).await.status(),
        401
    );
    // The admin links proxy user "carol" to a new local account "caroline".
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/users/new").await;
    admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "caroline"),
            ("role", "user"),
        ])
        .send()
        .await
        .unwrap();
    let token = app.csrf(&admin, "/admin/proxy").await;
    let r = admin
        .post(app.url("/admin/proxy/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("proxy_user", "carol"),
            ("username", "nobody-by-that-name"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("No account has this username") && html.contains("value=\"carol\""));
    let r = admin
        .post(app.url("/admin/proxy/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("proxy_user", "carol"),
            ("username", "caroline"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = me_as(&app, &p, &[("Remote-User", "carol")]).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["username"], "caroline");
    // Unlinking (with its confirmation page) stops it again.
    let page = admin
        .get(app.url("/admin/proxy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page.find("/admin/sso/identities/").unwrap() + "/admin/sso/identities/".len();
    let id: String = page[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let path = format!("/admin/sso/identities/{id}/unlink");
    let confirm = admin
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_in(&confirm).unwrap();
    let r = admin
        .post(app.url(&path))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/admin/proxy?notice=unlinked");
    assert_eq!(
        me_as(&app, &p, &[("Remote-User", "carol")]).await.status(),
        401
    );
}

async fn an_existing_local_account_is_never_merged(db: Db) {
    let Some(app) = start(db, "auto", |_| {}).await else {
        return;
    };
    for name in [ADMIN, "ADMIN"] {
        let r = me_as(&app, &proxy(), &[("Remote-User", name)]).await;
        assert_eq!(
            r.status(),
            401,
            "{name} must not sign in as the local admin"
        );
    }
    assert_eq!(
        sql(
            &app,
            "UPDATE audit_events SET id = id WHERE action = 'login.proxy' AND outcome = 'failure'"
        )
        .await,
        2,
        "refusals are audited"
    );
}

async fn missing_header_and_refusals_show_a_banner(db: Db) {
    let Some(app) = start(db, "link", |_| {}).await else {
        return;
    };
    let page = proxy()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Forward-auth proxy did not provide a user identity header"),
        "{page}"
    );
    assert!(page.contains("Sign in with your proxy"));
    let page = proxy()
        .get(app.url("/login"))
        .header("Remote-User", "stranger")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("not linked to an account here"), "{page}");
    // The same request from an untrusted peer gets no banner (its headers mean nothing).
    let page = outsider()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("proxy-banner"), "{page}");
}

async fn nobody_signs_in_by_header_before_setup(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.2".into()];
            c.auth.proxy.policy = "auto".into();
        },
        false,
    )
    .await
    else {
        return;
    };
    let r = me_as(&app, &proxy(), &[("Remote-User", "early")]).await;
    assert_eq!(r.status(), 503, "setup comes first");
    assert_eq!(
        sql(&app, "UPDATE users SET role = role").await,
        0,
        "no account before the setup wizard"
    );
}

async fn presets_switch_the_header_names(db: Db) {
    let Some(app) = start(db, "auto", |_| {}).await else {
        return;
    };
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/proxy").await;
    let r = admin
        .post(app.url("/admin/proxy"))
        .form(&[("csrf_token", token.as_str()), ("preset", "authentik")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        me_as(&app, &proxy(), &[("Remote-User", "dave")])
            .await
            .status(),
        401
    );
    let r = me_as(
        &app,
        &proxy(),
        &[
            ("X-authentik-username", "dave"),
            ("X-authentik-groups", "a|b"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = admin
        .get(app.url("/admin/proxy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("X-authentik-username") && page.contains("id=\"preset-authentik\" checked"),
        "{page}"
    );
}

async fn diagnostics_show_what_arrived(db: Db) {
    let Some(app) = start(db, "link", |c| {
        c.server.trusted_proxies = "127.0.0.2".parse().unwrap();
    })
    .await
    else {
        return;
    };
    // The admin reaches the page through the "proxy" with a session, headers attached.
    let p = proxy();
    let token = {
        let html = p
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_in(&html).unwrap()
    };
    let r = p
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", crate::support::ADMIN_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = p
        .get(app.url("/admin/diagnostics"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "auth.example.com")
        .header("Remote-Email", "x@example.com")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("127.0.0.2:"), "peer: {html}");
    assert!(html.contains("<dd id=\"diag-scheme\">https</dd>"), "{html}");
    assert!(html.contains("auth.example.com"));
    assert!(html.contains("<strong>trusted</strong>"));
    assert!(html.contains("x@example.com"));
    assert!(html.contains("Forward-auth proxy did not provide a user identity header"));
    // From an untrusted peer the same headers are shown as ignored.
    let admin = app.admin_client().await;
    let html = admin
        .get(app.url("/admin/diagnostics"))
        .header("Remote-User", "mallory")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("not trusted") && html.contains("ignored: untrusted peer"),
        "{html}"
    );
    assert!(html.contains("<dd id=\"diag-scheme\">http</dd>"), "{html}");
}

async fn proxy_signed_in_writes_need_the_csrf_token(db: Db) {
    let Some(app) = start(db, "auto", |c| {
        c.auth.proxy.admin_groups = vec!["ops".into()]
    })
    .await
    else {
        return;
    };
    let target = user(&app, ADMIN).await.id;
    let browser = proxy();
    let disable = |token: Option<String>, who: &'static [(&'static str, &'static str)]| {
        let (c, url) = (
            browser.clone(),
            app.url(&format!("/api/admin/users/{target}/disable")),
        );
        async move {
            let mut r = c.post(url);
            for (k, v) in who {
                r = r.header(*k, *v);
            }
            if let Some(t) = token {
                r = r.header("X-CSRF-Token", t);
            }
            r.send().await.unwrap()
        }
    };
    const OPS: &[(&str, &str)] = &[("Remote-User", "opsadmin"), ("Remote-Groups", "ops")];
    const OTHER: &[(&str, &str)] = &[("Remote-User", "otheradmin"), ("Remote-Groups", "ops")];
    // No token, no Origin: what a forged request from another site looks like once the
    // browser's proxy session (its own cookie) rides along.
    let r = disable(None, OPS).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CSRF_TOKEN_INVALID");
    assert_eq!(user(&app, ADMIN).await.status.as_str(), "active");
    // A script on a Hallpass page gets the token from /api/auth/me (with its nonce cookie).
    let me: serde_json::Value = me_as(&app, &browser, OPS).await.json().await.unwrap();
    assert_eq!(me["auth_method"], "proxy");
    let token = me["csrf_token"].as_str().unwrap().to_owned();
    // Bound to the person: another proxy user in the same browser cannot use it.
    me_as(
        &app,
        &browser,
        &[("Remote-User", "otheradmin"), ("Remote-Groups", "ops")],
    )
    .await;
    assert_eq!(disable(Some(token.clone()), OTHER).await.status(), 403);
    assert_eq!(user(&app, ADMIN).await.status.as_str(), "active");
    let r = disable(Some(token), OPS).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(user(&app, ADMIN).await.status.as_str(), "disabled");
}

fn last_admin_proxy_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The group mapping may demote an admin, but never the last active one: the rule is
/// `policy::check_last_admin`, called inside the sign-in's write transaction. And an admin
/// who links a proxy identity to their own account keeps this session.
async fn group_mapping_keeps_the_last_admin(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.2".into()];
            c.auth.proxy.policy = "link".into();
            c.auth.proxy.admin_groups = vec!["ops".into()];
        },
        true,
    )
    .await
    else {
        return;
    };
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/proxy").await;
    let r = admin
        .post(app.url("/admin/proxy/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("proxy_user", "boss"),
            ("username", ADMIN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The admin linked their own account: their session stays.
    let r = admin.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me = |groups: &'static str| {
        let p = last_admin_proxy_client();
        let url = app.url("/api/auth/me");
        async move {
            let r = p
                .get(url)
                .header("Remote-User", "boss")
                .header("Remote-Groups", groups)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    assert_eq!(
        me("family").await["role"],
        "admin",
        "the last active admin is not demoted"
    );
    assert_eq!(user(&app, ADMIN).await.role.as_str(), "admin");
    // With another active admin, the mapping applies.
    let token = app.csrf(&admin, "/admin/users/new").await;
    let r = admin
        .post(app.url("/admin/users"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "second"),
            ("role", "admin"),
            ("password", "a long enough password 1"),
            ("password_confirm", "a long enough password 1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    assert_eq!(user(&app, "second").await.role.as_str(), "admin");
    assert_eq!(me("family").await["role"], "user");
}
