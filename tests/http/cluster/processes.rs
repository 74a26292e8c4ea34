//! Two real Hallpass processes (the built binary) on one PostgreSQL database.
//!
//! * Round-robin (issue 12, point 3): sign in on one, use the session on the other; the
//!   user table kept by one shows a sign-in and a role change made through the other;
//!   brute-force failures split over both reach one limit; a settings change, a proxy
//!   preset change, a provider change and an app rule change made on one are seen on the
//!   other at its next request.
//! * Instant invalidation across processes (point 2): while a load runs against B with the
//!   very credential under test, each change made through A that ends or narrows access is
//!   refused by B at the next request after A answered — no sleep in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use reqwest::Client;
use serde_json::{Value, json};

use crate::support::process::Node;
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestDb, csrf_in};

/// Two nodes on a fresh database (`None`: PostgreSQL unavailable and not required). A
/// bootstraps the admin; both share the data directory (the server secret).
async fn two_nodes(env: &[(&str, &str)]) -> Option<(TestDb, Node, Node)> {
    let db = TestDb::new(Db::Postgres)?;
    let mut first = env.to_vec();
    first.extend([
        ("HALLPASS_ADMIN_USERNAME", ADMIN),
        ("HALLPASS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]);
    let a = Node::start(&db.url, db.data_dir(), &first).await;
    let b = Node::start(&db.url, db.data_dir(), env).await;
    Some((db, a, b))
}

/// A client that keeps cookies (shared by both nodes: cookies ignore the port) and follows
/// no redirects.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

async fn json_call(
    c: &Client,
    csrf: &str,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method, url).header("x-csrf-token", csrf);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Creates a user through A's admin API; returns its id.
async fn create_user(a: &Node, admin: &(Client, String), name: &str, role: &str) -> i64 {
    let (code, v) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::POST,
        a.url("/api/admin/users"),
        Some(json!({ "username": name, "role": role, "password": format!("{name}-password-1") })),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    v["user"]["id"].as_i64().unwrap()
}

fn password(name: &str) -> String {
    format!("{name}-password-1")
}

/// A forward-auth question for `host`, as a proxy asks it for a script (no HTML wanted).
fn forward_auth(node: &Node, c: &Client, host: &str) -> reqwest::RequestBuilder {
    c.get(node.url("/api/authz/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", "/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_driven_round_robin_share_sessions_limits_settings_and_rules() {
    let Some((_db, a, b)) = two_nodes(&[
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT", "4"),
        ("HALLPASS_AUTH__RATE_LIMIT__MAX_FAILURES_PER_IP", "1000"),
        ("HALLPASS_AUTH__PROXY__ENABLED", "true"),
        ("HALLPASS_AUTH__PROXY__TRUSTED_PROXIES", "[127.0.0.1]"),
        ("HALLPASS_AUTH__PROXY__POLICY", "auto"),
    ])
    .await
    else {
        return;
    };
    // Sign in on A, use the session on B (and the other way round).
    let admin = a.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let me: Value = admin
        .0
        .get(b.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], ADMIN, "{me}");
    let other = b.sign_in(ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(status(other.0.get(a.url("/api/auth/me"))).await, 200);

    // The user table: B keeps the page it read, and shows what happened through A at once —
    // a role change, and a sign-in (the last sign-in notifies a channel of its own).
    create_user(&a, &admin, "dave", "user").await;
    let listed = |node: &Node| {
        let (c, url) = (admin.0.clone(), node.url("/api/admin/users?q=dave"));
        async move {
            let v: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            v["users"][0].clone()
        }
    };
    let dave = listed(&b).await;
    assert!(
        dave["last_login_at"].is_null() && dave["role"] == "user",
        "{dave}"
    );
    assert_eq!(listed(&b).await, dave, "read again: the kept page");
    a.sign_in("dave", &password("dave")).await;
    assert!(
        listed(&b).await["last_login_at"].is_i64(),
        "B shows A's sign-in"
    );
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::PATCH,
        a.url(&format!("/api/admin/users/{}", dave["id"])),
        Some(json!({ "role": "viewer" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        listed(&b).await["role"],
        "viewer",
        "B shows A's role change"
    );

    // Brute force: four failures, alternating, reach the limit of four on both.
    let guess = |node: &Node| {
        browser()
            .post(node.url("/api/auth/login"))
            .json(&json!({ "username": "victim", "password": "guess" }))
    };
    for node in [&a, &b, &a, &b] {
        assert_eq!(status(guess(node)).await, 401);
    }
    assert_eq!(status(guess(&a)).await, 429, "A counted B's failures");
    assert_eq!(status(guess(&b)).await, 429, "B counted A's failures");

    // Settings: registration opened on A is open on B.
    assert_eq!(status(browser().get(b.url("/register"))).await, 404);
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::PUT,
        a.url("/api/admin/settings"),
        Some(json!({ "registration_enabled": true, "auto_approve_registrations": false })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(status(browser().get(b.url("/register"))).await, 200);

    // Proxy preset: chosen on A, B reads the new header names at its next request.
    let carol = || {
        browser()
            .get(b.url("/api/auth/me"))
            .header("X-authentik-username", "carol")
    };
    assert_eq!(status(carol()).await, 401, "not a header B reads yet");
    let html = admin
        .0
        .get(a.url("/admin/proxy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = admin
        .0
        .post(a.url("/admin/proxy"))
        .form(&[
            ("csrf_token", csrf_in(&html).unwrap().as_str()),
            ("preset", "authentik"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status() == 200,
        "{}",
        r.status()
    );
    let r = carol().send().await.unwrap();
    assert_eq!(r.status(), 200, "B follows A's preset at once");
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["username"], "carol", "{who}");

    // A provider saved on A is listed, and renamed, on B.
    let provider = |label: &str| {
        let label = label.to_owned();
        let (c, a_new) = (admin.0.clone(), a.url("/admin/sso/new"));
        async move {
            let html = c.get(&a_new).send().await.unwrap().text().await.unwrap();
            vec![
                ("csrf_token", csrf_in(&html).unwrap()),
                ("id", "home".into()),
                ("label", label),
                ("issuer", "https://idp.example.com".into()),
                ("client_id", "hallpass".into()),
                ("client_secret", "s3cret-s3cret".into()),
                ("scopes", "openid profile email".into()),
                ("policy", "link".into()),
                ("action", "save".into()),
            ]
        }
    };
    let form = provider("Home IdP").await;
    let r = admin
        .0
        .post(a.url("/admin/sso/new"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let listed = || async {
        admin
            .0
            .get(b.url("/admin/sso"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(listed().await.contains("Home IdP"));
    let mut form = provider("Lab IdP").await;
    form.retain(|(k, _)| *k != "id" && *k != "client_secret");
    let r = admin
        .0
        .post(a.url("/admin/sso/providers/home"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let page = listed().await;
    assert!(
        page.contains("Lab IdP") && !page.contains("Home IdP"),
        "B shows the new label"
    );

    // App rules: changed on A, applied by B's forward-auth at once.
    let (code, app) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::POST,
        a.url("/api/admin/apps"),
        Some(json!({ "name": "Wiki", "hosts": ["wiki.example.com"], "access": "signed_in" })),
    )
    .await;
    assert_eq!(code, 201, "{app}");
    let anonymous = browser();
    assert_eq!(
        status(forward_auth(&b, &anonymous, "wiki.example.com")).await,
        401
    );
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::PATCH,
        a.url(&format!("/api/admin/apps/{}", app["id"])),
        Some(json!({ "access": "public" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        status(forward_auth(&b, &anonymous, "wiki.example.com")).await,
        200,
        "B applies A's rule at once"
    );
}

/// Requests B without pause with one credential until stopped; counts them.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(request: impl Fn() -> reqwest::RequestBuilder + Send + Sync + 'static) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let request = Arc::new(request);
        let tasks = (0..4)
            .map(|_| {
                let (stop, sent, request) = (stop.clone(), sent.clone(), request.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let _ = request().send().await;
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load { stop, sent, tasks }
    }

    /// Waits until the load has sent a few requests (so caches are warm and busy).
    async fn warm(&self) {
        while self.sent.load(Ordering::Relaxed) < 20 {
            tokio::task::yield_now().await;
        }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// Signs `name` in on A, checks B accepts the session on `path` (`ok`), starts a load on B
/// with that session, and returns both.
async fn victim(a: &Node, b: &Node, name: &str, path: &str, ok: u16) -> ((Client, String), Load) {
    let session = a.sign_in(name, &password(name)).await;
    assert_eq!(
        status(session.0.get(b.url(path))).await,
        ok,
        "{name} on B before"
    );
    let (c, url) = (session.0.clone(), b.url(path));
    let load = Load::start(move || c.get(&url));
    load.warm().await;
    (session, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_process_is_refused_by_the_other_at_its_next_request() {
    let Some((_db, a, b)) = two_nodes(&[]).await else {
        return;
    };
    let admin = a.sign_in(ADMIN, ADMIN_PASSWORD).await;
    let post = |path: String, body: Value| {
        let admin = admin.clone();
        async move {
            json_call(&admin.0, &admin.1, reqwest::Method::POST, path, Some(body))
                .await
                .0
        }
    };
    let me = "/api/auth/me";

    // Password change by the user (from another session of theirs).
    create_user(&a, &admin, "pat", "user").await;
    let (victim_session, load) = victim(&a, &b, "pat", me, 200).await;
    let changer = a.sign_in("pat", &password("pat")).await;
    let (code, _) = json_call(
        &changer.0,
        &changer.1,
        reqwest::Method::POST,
        a.url("/api/me/password"),
        Some(
            json!({ "current_password": password("pat"), "new_password": "another-long-password" }),
        ),
    )
    .await;
    assert!(code == 200 || code == 204, "{code}");
    assert_eq!(
        status(victim_session.0.get(b.url(me))).await,
        401,
        "password change"
    );
    load.stop().await;

    // Admin password reset, disable, delete.
    for (name, action) in [("rex", "password"), ("dan", "disable"), ("del", "delete")] {
        let id = create_user(&a, &admin, name, "user").await;
        let (session, load) = victim(&a, &b, name, me, 200).await;
        let code = match action {
            "password" => {
                post(
                    a.url(&format!("/api/admin/users/{id}/password")),
                    json!({ "password": "reset-by-the-admin" }),
                )
                .await
            }
            "disable" => post(a.url(&format!("/api/admin/users/{id}/disable")), json!({})).await,
            _ => {
                json_call(
                    &admin.0,
                    &admin.1,
                    reqwest::Method::DELETE,
                    a.url(&format!("/api/admin/users/{id}")),
                    None,
                )
                .await
                .0
            }
        };
        assert!((200..300).contains(&code), "{action}: {code}");
        assert_eq!(status(session.0.get(b.url(me))).await, 401, "{action}");
        load.stop().await;
    }

    // Role change: an admin demoted on A loses the admin API on B.
    let id = create_user(&a, &admin, "boss", "admin").await;
    let (session, load) = victim(&a, &b, "boss", "/api/admin/users", 200).await;
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::PATCH,
        a.url(&format!("/api/admin/users/{id}")),
        Some(json!({ "role": "user" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        status(session.0.get(b.url("/api/admin/users"))).await,
        403,
        "role change"
    );
    load.stop().await;

    // Group membership and rule change, as B's forward-auth answers them.
    let gina = create_user(&a, &admin, "gina", "user").await;
    create_user(&a, &admin, "rita", "user").await;
    let (code, group) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::POST,
        a.url("/api/admin/groups"),
        Some(json!({ "name": "family" })),
    )
    .await;
    assert_eq!(code, 201, "{group}");
    let gid = group["id"].as_i64().unwrap();
    assert!(
        (200..300).contains(
            &post(
                a.url(&format!("/api/admin/groups/{gid}/members")),
                json!({ "user_id": gina })
            )
            .await
        )
    );
    for (name, host, access) in [
        (
            "Family",
            "family.example.com",
            json!({ "access": "restricted", "groups": [gid] }),
        ),
        ("Open", "open.example.com", json!({ "access": "signed_in" })),
    ] {
        let mut body = json!({ "name": name, "hosts": [host] });
        body.as_object_mut()
            .unwrap()
            .extend(access.as_object().unwrap().clone());
        let (code, v) = json_call(
            &admin.0,
            &admin.1,
            reqwest::Method::POST,
            a.url("/api/admin/apps"),
            Some(body),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    let gina_session = a.sign_in("gina", &password("gina")).await;
    assert_eq!(
        status(forward_auth(&b, &gina_session.0, "family.example.com")).await,
        200
    );
    let (c, url_b) = (gina_session.0.clone(), b.url("/api/authz/forward-auth"));
    let load = Load::start(move || {
        c.get(&url_b)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "family.example.com")
            .header("X-Forwarded-Uri", "/")
    });
    load.warm().await;
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::DELETE,
        a.url(&format!("/api/admin/groups/{gid}/members/{gina}")),
        None,
    )
    .await;
    assert!((200..300).contains(&code), "{code}");
    assert_eq!(
        status(forward_auth(&b, &gina_session.0, "family.example.com")).await,
        403,
        "group membership"
    );
    load.stop().await;

    let rita = a.sign_in("rita", &password("rita")).await;
    assert_eq!(
        status(forward_auth(&b, &rita.0, "open.example.com")).await,
        200
    );
    let (c, url_b) = (rita.0.clone(), b.url("/api/authz/forward-auth"));
    let load = Load::start(move || {
        c.get(&url_b)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "open.example.com")
            .header("X-Forwarded-Uri", "/")
    });
    load.warm().await;
    let (_, apps) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::GET,
        a.url("/api/admin/apps"),
        None,
    )
    .await;
    let open = apps
        .as_array()
        .or_else(|| apps["apps"].as_array())
        .unwrap()
        .iter()
        .find(|x| x["name"] == "Open")
        .unwrap()["id"]
        .clone();
    let (code, _) = json_call(
        &admin.0,
        &admin.1,
        reqwest::Method::PATCH,
        a.url(&format!("/api/admin/apps/{open}")),
        Some(json!({ "access": "restricted", "roles": ["admin"] })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        status(forward_auth(&b, &rita.0, "open.example.com")).await,
        403,
        "rule change"
    );
    load.stop().await;

    // Sign-out on A ends the session on B.
    create_user(&a, &admin, "sam", "user").await;
    let (session, load) = victim(&a, &b, "sam", me, 200).await;
    let code = status(
        session
            .0
            .post(a.url("/api/auth/logout"))
            .header("x-csrf-token", &session.1),
    )
    .await;
    assert_eq!(code, 204);
    assert_eq!(status(session.0.get(b.url(me))).await, 401, "sign-out");
    load.stop().await;

    // Unlinking an identity (a proxy user name linked by the admin) ends the account's
    // sessions on B.
    create_user(&a, &admin, "uli", "user").await;
    let page = admin
        .0
        .get(a.url("/admin/proxy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = admin
        .0
        .post(a.url("/admin/proxy/links"))
        .form(&[
            ("csrf_token", csrf_in(&page).unwrap().as_str()),
            ("proxy_user", "uli-at-the-proxy"),
            ("username", "uli"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let page = admin
        .0
        .get(a.url("/admin/proxy"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page
        .find("/admin/sso/identities/")
        .expect("the link is listed")
        + "/admin/sso/identities/".len();
    let identity: String = page[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let (session, load) = victim(&a, &b, "uli", me, 200).await;
    let unlink = a.url(&format!("/admin/sso/identities/{identity}/unlink"));
    let page = admin
        .0
        .get(&unlink)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = admin
        .0
        .post(&unlink)
        .form(&[("csrf_token", csrf_in(&page).unwrap().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(status(session.0.get(b.url(me))).await, 401, "unlink");
    load.stop().await;

    // An API key revoked on A stops on B.
    create_user(&a, &admin, "kim", "user").await;
    let kim = a.sign_in("kim", &password("kim")).await;
    let (code, key) = json_call(
        &kim.0,
        &kim.1,
        reqwest::Method::POST,
        a.url("/api/me/api-keys"),
        Some(json!({ "name": "ci", "expires_in_days": 30 })),
    )
    .await;
    assert_eq!(code, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let bearer = || Client::new().get(b.url(me)).bearer_auth(secret.clone());
    assert_eq!(status(bearer()).await, 200);
    let (url_b, s) = (b.url(me), secret.clone());
    let load = Load::start(move || Client::new().get(&url_b).bearer_auth(s.clone()));
    load.warm().await;
    let (code, _) = json_call(
        &kim.0,
        &kim.1,
        reqwest::Method::DELETE,
        a.url(&format!("/api/me/api-keys/{}", key["id"])),
        None,
    )
    .await;
    assert!((200..300).contains(&code), "{code}");
    assert_eq!(status(bearer()).await, 401, "API key revocation");
    load.stop().await;
}
