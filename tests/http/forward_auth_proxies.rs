//! Forward-auth through real proxies: Debian's Caddy (`forward_auth` →
//! `/api/authz/forward-auth`) and nginx (`auth_request` → `/api/authz/auth-request`) on
//! loopback, configured with the snippets of `docs/forward-auth.md` (read from the doc; only
//! the placeholders are replaced), in front of an upstream app that echoes what it received.
//!
//! The setup is a homelab's: Hallpass at `auth.example.test`, the guarded app at
//! `app.example.test`, both served by the proxy on one port, the session cookie shared on
//! `example.test`. The app is open to the group `family` (the admin is in it, bob is not).
//! Also: Hallpass's own sign-in by proxy headers (`auth.proxy.*`) behind a real nginx.

use hallpass::config::AppConfig;
use hallpass::domain::Password;
use hallpass::domain::apps::AccessKind;
use hallpass::service::Actor;
use hallpass::service::admin::{InitialPassword, Profile, create_user};
use serde_json::Value;

use crate::support::caddy::Caddy;
use crate::support::echo::{Echo, header};
use crate::support::named::{self, APP, AUTH, Browser, DOMAIN, location, session_set_cookies};
use crate::support::nginx::Nginx;
use crate::support::snippet;
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, client_from, csrf_in, free_port, sql};

both_databases!(
    caddy_sends_a_visitor_to_sign_in_and_back_with_remote_user,
    caddy_refuses_a_user_without_access_and_takes_api_keys,
    nginx_sends_a_visitor_to_sign_in_and_back_with_remote_user,
    nginx_refuses_a_user_without_access_and_takes_api_keys,
    proxy_header_sign_in_behind_a_real_nginx,
);

const DOC: &str = "docs/forward-auth.md";
const BOB_PASSWORD: &str = "bob's long password";
/// What browsers send for a page.
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[derive(Debug, Clone, Copy)]
enum Proxy {
    Caddy,
    Nginx,
}

/// Hallpass, the proxy in front of it and of the app, and the app.
struct Homelab {
    _app: TestApp,
    /// The proxy's port: `http://auth.example.test:<port>` and `http://app.example.test:<port>`.
    port: u16,
    _echo: Echo,
    _caddy: Option<Caddy>,
    _nginx: Option<Nginx>,
}

impl Homelab {
    fn app_url(&self, path_and_query: &str) -> String {
        format!("http://{APP}:{}{path_and_query}", self.port)
    }

    fn auth_url(&self, path_and_query: &str) -> String {
        format!("http://{AUTH}:{}{path_and_query}", self.port)
    }
}

/// The app open to the group `family`.
fn family_app() -> AppConfig {
    AppConfig {
        name: "Echo".into(),
        url: None,
        icon: None,
        hosts: vec![APP.into()],
        paths: vec![],
        access: AccessKind::Restricted,
        roles: vec![],
        groups: vec!["family".into()],
        users: vec![],
        viewers_read_only: false,
    }
}

/// `/public` of the same host, open to everyone.
fn public_corner() -> AppConfig {
    AppConfig {
        name: "Echo public corner".into(),
        paths: vec!["/public".into()],
        access: AccessKind::Public,
        groups: vec![],
        ..family_app()
    }
}

async fn homelab(db: Db, proxy: Proxy) -> Option<Homelab> {
    let hallpass_port = free_port();
    let port = free_port();
    let echo = Echo::start().await;
    let app = TestApp::start(
        db,
        |c| {
            named::shared(c, hallpass_port, port);
            // The proxy is the TCP peer: its X-Forwarded-For names the client.
            c.server.trusted_proxies = "127.0.0.1".parse().unwrap();
            c.apps = vec![family_app(), public_corner()];
        },
        true,
    )
    .await?;
    create_user(
        &app.state.db,
        &app.state.hasher,
        Actor::system("test"),
        Profile::parse("bob", "bob@example.test", "Bob", "user").unwrap(),
        InitialPassword::Given(Password::parse(BOB_PASSWORD).unwrap()),
    )
    .await
    .unwrap();
    sql(
        &app,
        "INSERT INTO group_members (group_id, user_id, source, created_at) \
         SELECT g.id, u.id, 'admin', 0 FROM groups g, users u \
         WHERE g.name_key = 'family' AND u.username_key = 'admin'",
    )
    .await;
    let hallpass = format!("127.0.0.1:{hallpass_port}");
    let upstream = echo.addr.to_string();
    let (caddy, nginx) = match proxy {
        Proxy::Caddy => {
            let config = snippet::fill(
                &snippet::from_doc(DOC, "caddy"),
                &[
                    ("auth.example.com", format!("http://{AUTH}:{port}")),
                    ("app.example.com", format!("http://{APP}:{port}")),
                    ("hallpass:8700", hallpass),
                    ("whoami:80", upstream),
                ],
            );
            (Some(Caddy::start(&config, &[port])?), None)
        }
        Proxy::Nginx => {
            let config = snippet::fill(
                &snippet::from_doc(DOC, "nginx"),
                &[
                    ("listen 80;", format!("listen 127.0.0.1:{port};")),
                    ("auth.example.com", AUTH.to_owned()),
                    ("app.example.com", APP.to_owned()),
                    ("hallpass:8700", hallpass),
                    ("whoami:80", upstream),
                ],
            );
            (None, Some(Nginx::start_servers(&config, port)?))
        }
    };
    Some(Homelab {
        _app: app,
        port,
        _echo: echo,
        _caddy: caddy,
        _nginx: nginx,
    })
}

/// The `rd` of a redirect to the sign-in page, after checking it is Hallpass's `/login`.
fn sign_in_rd(lab: &Homelab, to: &str) -> String {
    let url = url::Url::parse(to).unwrap_or_else(|e| panic!("{to}: {e}"));
    assert_eq!(
        url.origin().ascii_serialization(),
        lab.auth_url(""),
        "to Hallpass's public URL: {to}"
    );
    assert_eq!(url.path(), "/login", "{to}");
    url.query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no rd in {to}"))
}

/// The echoed request, from a `200` of the upstream app (anything else fails the test).
async fn echoed(r: reqwest::Response) -> Value {
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "expected the app's answer: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["echo"], true, "{v}");
    v
}

/// Signs in with the sign-in form reached through the proxy, carrying `rd` as the page does.
async fn sign_in_via(
    lab: &Homelab,
    b: &Browser,
    login_url: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let page = b
        .http
        .get(login_url)
        .header("Accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the sign-in page through the proxy");
    let html = page.text().await.unwrap();
    let token = csrf_in(&html).unwrap();
    let rd = url::Url::parse(login_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !rd.is_empty() {
        assert!(html.contains("name=\"rd\""), "the form carries rd: {html}");
    }
    b.http
        .post(lab.auth_url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", user),
            ("password", password),
            ("rd", rd.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Anonymous browser → sign-in page → back to the original URL → the app sees Remote-User
/// and Remote-Groups, not what the client sent; after sign-out, access ends.
async fn round_trip(db: Db, proxy: Proxy) {
    let Some(lab) = homelab(db, proxy).await else {
        return;
    };
    let b = Browser::new();
    let page = lab.app_url("/library/shows?sort=new");

    // Anonymous: to Hallpass's sign-in page with the original URL — the real one, whatever
    // forwarding headers the client made up.
    let r = b
        .http
        .get(&page)
        .header("Accept", HTML)
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Uri", "/elsewhere")
        .header("X-Original-URL", "http://evil.example/elsewhere")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{proxy:?}: {:?}", r.text().await);
    let to_login = location(&r);
    assert_eq!(sign_in_rd(&lab, &to_login), page, "{proxy:?}");

    // A public corner of the app: passed anonymously, and a client's `Remote-User` does not
    // come along (nothing, or an empty value — never the client's, nor Caddy's placeholder
    // text for a header the answer lacked).
    let seen = echoed(
        b.http
            .get(lab.app_url("/public/readme"))
            .header("Accept", HTML)
            .header("Remote-User", ADMIN)
            .header("Remote-Groups", "admins")
            .send()
            .await
            .unwrap(),
    )
    .await;
    for name in [
        "remote-user",
        "remote-groups",
        "remote-name",
        "remote-email",
    ] {
        let v = header(&seen, name).unwrap_or_default();
        assert!(v.is_empty(), "{proxy:?}: {name}: {v:?} reached the app");
    }

    // Sign in with the form, through the proxy: back to the page, cookie for the domain.
    let r = sign_in_via(&lab, &b, &to_login, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), page);
    assert!(
        session_set_cookies(&r)
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}"))),
        "{:?}",
        session_set_cookies(&r)
    );

    // The app gets the request, and who it is from.
    let seen = echoed(
        b.http
            .get(&page)
            .header("Accept", HTML)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["uri"], "/library/shows?sort=new", "{seen}");
    assert_eq!(seen["method"], "GET");
    assert_eq!(
        header(&seen, "remote-user").as_deref(),
        Some(ADMIN),
        "{seen}"
    );
    assert_eq!(
        header(&seen, "remote-groups").as_deref(),
        Some("family"),
        "{seen}"
    );
    assert_eq!(
        header(&seen, "remote-email").as_deref(),
        Some("admin@example.com"),
        "{seen}"
    );

    // A client's own identity headers are not what the app sees: the snippet replaces them.
    let seen = echoed(
        b.http
            .post(lab.app_url("/api/items"))
            .header("Remote-User", "mallory")
            .header("Remote-Groups", "admins")
            .header("Remote-Email", "mallory@evil.example")
            .body("x=1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(
        header(&seen, "remote-user").as_deref(),
        Some(ADMIN),
        "{seen}"
    );
    assert_eq!(
        header(&seen, "remote-groups").as_deref(),
        Some("family"),
        "{seen}"
    );
    assert_eq!(
        header(&seen, "remote-email").as_deref(),
        Some("admin@example.com"),
        "{seen}"
    );

    // Sign-out, on Hallpass's page: the app is closed again at once.
    let account = b.http.get(lab.auth_url("/account")).send().await.unwrap();
    let token = csrf_in(&account.text().await.unwrap()).unwrap();
    let r = b
        .http
        .post(lab.auth_url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = b
        .http
        .get(&page)
        .header("Accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "signed out: back to the sign-in page");
    assert_eq!(sign_in_rd(&lab, &location(&r)), page);
}

/// A signed-in user the app is not open to gets 403; an API key (Bearer, or as the password
/// of Basic) opens it to scripts; a bad key, or a script without one, gets 401.
async fn refusals_and_keys(db: Db, proxy: Proxy) {
    let Some(lab) = homelab(db, proxy).await else {
        return;
    };
    let page = lab.app_url("/dashboard");

    // bob is signed in (at Hallpass, through the proxy) but not in `family`.
    let b = Browser::new();
    let r = sign_in_via(&lab, &b, &lab.auth_url("/login"), "bob", BOB_PASSWORD).await;
    assert_eq!(r.status(), 303);
    let r = b
        .http
        .get(&page)
        .header("Accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "{proxy:?}");
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("\"echo\""),
        "the app was not reached: {body}"
    );
    if let Proxy::Caddy = proxy {
        // nginx shows its own 403 page; Caddy passes Hallpass's on.
        assert!(body.contains("bob"), "says who is signed in: {body}");
    }

    // The admin's API key (made at Hallpass, through the proxy), from a script that keeps
    // no cookies.
    let admin = Browser::new();
    let me: Value = admin
        .http
        .post(lab.auth_url("/api/auth/login"))
        .json(&serde_json::json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created: Value = admin
        .http
        .post(lab.auth_url("/api/me/api-keys"))
        .header("X-CSRF-Token", me["csrf_token"].as_str().unwrap())
        .json(&serde_json::json!({ "name": "dashboard sync" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let script = Browser::new();
    let seen = echoed(
        script
            .http
            .get(&page)
            .header("Accept", "application/json")
            .bearer_auth(&key)
            .header("Remote-User", "mallory")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        header(&seen, "remote-user").as_deref(),
        Some(ADMIN),
        "{seen}"
    );
    let seen = echoed(
        script
            .http
            .get(&page)
            .header("Accept", "application/json")
            .basic_auth(ADMIN, Some(&key))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        header(&seen, "remote-user").as_deref(),
        Some(ADMIN),
        "{seen}"
    );
    for r in [
        script
            .http
            .get(&page)
            .header("Accept", "application/json")
            .bearer_auth("hp_not-a-key-at-all-not-a-key-at-all-0000000")
            .send(),
        // A password is never accepted here, even the right one.
        script
            .http
            .get(&page)
            .header("Accept", "application/json")
            .basic_auth(ADMIN, Some(ADMIN_PASSWORD))
            .send(),
        script
            .http
            .get(&page)
            .header("Accept", "application/json")
            .send(),
    ] {
        let r = r.await.unwrap();
        assert_eq!(r.status(), 401, "{proxy:?}");
    }
}

async fn caddy_sends_a_visitor_to_sign_in_and_back_with_remote_user(db: Db) {
    round_trip(db, Proxy::Caddy).await;
}

async fn caddy_refuses_a_user_without_access_and_takes_api_keys(db: Db) {
    refusals_and_keys(db, Proxy::Caddy).await;
}

async fn nginx_sends_a_visitor_to_sign_in_and_back_with_remote_user(db: Db) {
    round_trip(db, Proxy::Nginx).await;
}

async fn nginx_refuses_a_user_without_access_and_takes_api_keys(db: Db) {
    refusals_and_keys(db, Proxy::Nginx).await;
}

/// Hallpass's own sign-in by proxy headers (docs/proxy.md) behind a real nginx that
/// authenticates with its own basic auth and passes the name as `Remote-User`, replacing
/// whatever the client sent; the same header straight from a client is ignored.
async fn proxy_header_sign_in_behind_a_real_nginx(db: Db) {
    let port = free_port();
    let hallpass_port = free_port();
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.server.bind = format!("127.0.0.1:{hallpass_port}").parse().unwrap();
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.1".into()];
            c.auth.proxy.policy = "auto".into();
        },
        true,
    )
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    std::fs::write(&users, "carol:{PLAIN}carol-proxy-pass\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // nginx's workers run as an unprivileged user when the tests run as root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = format!(
        "server {{
            listen 127.0.0.1:{port};
            location / {{
                auth_basic \"homelab\";
                auth_basic_user_file {users};
                proxy_pass http://127.0.0.1:{hallpass_port};
                proxy_set_header Host $http_host;
                proxy_set_header Remote-User $remote_user;
                proxy_set_header Authorization \"\";
            }}
        }}",
        users = users.display()
    );
    let Some(_nginx) = Nginx::start_servers(&server, port) else {
        return;
    };
    let through = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let c = reqwest::Client::new();
    let r = c.get(through("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401, "nginx asks for its own sign-in first");
    let me: Value = c
        .get(through("/api/auth/me"))
        .basic_auth("carol", Some("carol-proxy-pass"))
        .header("Remote-User", ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "carol", "{me}");
    assert_eq!(me["auth_method"], "proxy", "{me}");
    // Straight to Hallpass from another machine, the header is nobody's word.
    let r = client_from("127.0.0.2")
        .get(app.url("/api/auth/me"))
        .header("Remote-User", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
