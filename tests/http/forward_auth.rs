//! The forward-auth endpoints over real HTTP (without a proxy in front: the proxies'
//! tests are in `forward_auth_proxies`): Authelia's answers, who may call, and that every
//! change reaches the next request even though SQLite answers come from a cache.

use hallpass::domain::apps::{Access, AppSource, HostPattern, PathPrefix};
use hallpass::domain::{NewApiKey, Role};
use hallpass::service::Actor;
use reqwest::Client;

use crate::support::{ADMIN, Db, TestApp, add_user, api_login, sql, user};

both_databases!(
    anonymous_visitors_are_sent_to_sign_in_with_the_original_url,
    allowed_callers_get_their_identity_headers,
    refusals_name_who_and_why,
    broken_forwarding_headers_are_400_naming_the_header,
    api_keys_as_bearer_or_basic_and_never_a_password,
    every_change_takes_effect_on_the_next_request,
    a_key_owners_group_change_takes_effect_on_the_next_check,
    rules_pick_the_most_specific_app_and_the_default_policy,
    viewers_only_read_read_only_apps
);

const PUBLIC_URL: &str = "https://auth.example.com";
const PASSWORD: &str = crate::support::MEMBER_PASSWORD;

async fn start(db: Db, tweak: impl FnOnce(&mut hallpass::config::Config)) -> Option<TestApp> {
    TestApp::start(
        db,
        |c| {
            c.server.public_url = Some(PUBLIC_URL.parse().unwrap());
            tweak(c);
        },
        true,
    )
    .await
}

/// Stores an app (as the admin screens will) and bumps the rules version.
async fn add_app(app: &TestApp, name: &str, hosts: &[&str], paths: &[&str], access: Access) -> i64 {
    add_app_with(app, name, hosts, paths, access, false).await
}

async fn add_app_with(
    app: &TestApp,
    name: &str,
    hosts: &[&str],
    paths: &[&str],
    access: Access,
    viewers_read_only: bool,
) -> i64 {
    let name = name.to_owned();
    let hosts: Vec<_> = hosts
        .iter()
        .map(|h| HostPattern::parse(h).unwrap())
        .collect();
    let paths: Vec<_> = paths
        .iter()
        .map(|p| PathPrefix::parse(p).unwrap())
        .collect();
    app.state
        .db
        .run(move |c| {
            let id = hallpass::db::apps::insert(
                c,
                &hallpass::db::apps::AppWrite {
                    name: &name,
                    url: None,
                    icon: None,
                    hosts: &hosts,
                    paths: &paths,
                    access: &access,
                    viewers_read_only,
                    source: AppSource::Ui,
                },
            )?;
            hallpass::db::settings::bump_rules_version(c)?;
            Ok::<_, hallpass::db::DbError>(id)
        })
        .await
        .unwrap()
}

async fn add_to_group(app: &TestApp, group: &str, user_id: i64) -> i64 {
    let group = group.to_owned();
    let gid = app
        .state
        .db
        .run(move |c| hallpass::db::groups::ensure(c, &group))
        .await
        .unwrap();
    sql(
        app,
        format!(
            "INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ({gid}, {user_id}, 'admin', 0)"
        ),
    )
    .await;
    gid
}

/// A browser asking (through a Traefik/Caddy-style proxy) for `method https://host uri`.
async fn fa(app: &TestApp, c: &Client, method: &str, host: &str, uri: &str) -> reqwest::Response {
    c.get(app.url("/api/authz/forward-auth"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .header("X-Forwarded-Method", method)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", uri)
        .send()
        .await
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The app "Crew" (crew.example.com), open to the group "crew" only, and its one member.
struct Crew {
    member: i64,
    group: i64,
    app: i64,
}

async fn crew(app: &TestApp, member: &str) -> Crew {
    let member = add_user(app, member, "user").await;
    let group = add_to_group(app, "crew", member).await;
    let access = Access::Restricted {
        roles: vec![],
        groups: vec![group],
        users: vec![],
    };
    let app = add_app(app, "Crew", &["crew.example.com"], &[], access).await;
    Crew { member, group, app }
}

/// A new API key of `username`'s, named `name`: its secret.
async fn api_key(app: &TestApp, username: &str, name: &str) -> String {
    let owner = user(app, username).await;
    hallpass::service::api_keys::create(
        &app.state.db,
        &app.state.secret,
        Actor::system("test"),
        &owner,
        NewApiKey::parse(name, None).unwrap(),
    )
    .await
    .unwrap()
    .secret
}

async fn signed_in(app: &TestApp, name: &str, password: &str) -> Client {
    let c = app.client();
    assert_eq!(
        app.login(&c, name, password).await.status(),
        303,
        "{name} signs in"
    );
    c
}

async fn anonymous_visitors_are_sent_to_sign_in_with_the_original_url(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    add_app(&app, "Wiki", &["wiki.example.com"], &[], Access::SignedIn).await;
    let c = app.client();
    let rd = "https%3A%2F%2Fwiki.example.com%2Fpage%3Fa%3D1%26b%3D2";
    let login = format!("{PUBLIC_URL}/login?rd={rd}");

    let r = fa(&app, &c, "GET", "wiki.example.com", "/page?a=1&b=2").await;
    assert_eq!(r.status(), 302);
    assert_eq!(header(&r, "location").as_deref(), Some(login.as_str()));
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert_eq!(header(&r, "remote-user"), None);
    let r = fa(&app, &c, "HEAD", "wiki.example.com", "/page?a=1&b=2").await;
    assert_eq!(r.status(), 302, "HEAD is a browser read too");
    let r = fa(&app, &c, "POST", "wiki.example.com", "/page?a=1&b=2").await;
    assert_eq!(
        r.status(),
        303,
        "other methods get 303, so the browser GETs the sign-in page"
    );
    assert_eq!(header(&r, "location").as_deref(), Some(login.as_str()));

    // Scripts get 401, not a redirect into an HTML page.
    for (accept, xhr) in [
        ("application/json", None),
        ("text/html", Some("XMLHttpRequest")),
    ] {
        let req = c.get(app.url("/api/authz/forward-auth"));
        let req = match xhr {
            Some(v) => req.header("X-Requested-With", v),
            None => req,
        };
        let r = req
            .header("Accept", accept)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "wiki.example.com")
            .header("X-Forwarded-Uri", "/api/x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{accept} {xhr:?}");
    }

    // nginx: always 401, with the sign-in URL in Location for its error_page; any method.
    for method in ["GET", "POST", "PUT"] {
        let r = c
            .request(method.parse().unwrap(), app.url("/api/authz/auth-request"))
            .header("Accept", "text/html")
            .header("X-Original-Method", "GET")
            .header("X-Original-URL", "https://wiki.example.com/page?a=1&b=2")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method}");
        assert_eq!(header(&r, "location").as_deref(), Some(login.as_str()));
    }
    // A script behind nginx: 401 without Location, so the error_page leaves it a 401.
    let r = c
        .get(app.url("/api/authz/auth-request"))
        .header("Accept", "application/json")
        .header("X-Original-Method", "GET")
        .header("X-Original-URL", "https://wiki.example.com/api/items")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "location"), None);
    // The endpoint itself answers any method like GET.
    let r = c
        .post(app.url("/api/authz/forward-auth"))
        .header("Accept", "text/html")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "wiki.example.com")
        .header("X-Forwarded-Uri", "/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
}

async fn allowed_callers_get_their_identity_headers(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let alice = add_user(&app, "alice", "user").await;
    sql(
        &app,
        format!("UPDATE users SET display_name = 'Alice Liddell' WHERE id = {alice}"),
    )
    .await;
    add_to_group(&app, "family", alice).await;
    add_to_group(&app, "Media", alice).await;
    add_app(&app, "Wiki", &["wiki.example.com"], &[], Access::SignedIn).await;
    let c = signed_in(&app, "alice", PASSWORD).await;
    let r = fa(&app, &c, "GET", "wiki.example.com", "/").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user").as_deref(), Some("alice"));
    assert_eq!(header(&r, "remote-name").as_deref(), Some("Alice Liddell"));
    assert_eq!(
        header(&r, "remote-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(header(&r, "remote-groups").as_deref(), Some("family,Media"));
    // Asked a second time (from the cache on SQLite): the same answer.
    let again = fa(&app, &c, "GET", "wiki.example.com", "/x").await;
    assert_eq!(
        header(&again, "remote-groups").as_deref(),
        Some("family,Media")
    );
    // The JSON API's session (cookie) works as well.
    let (api, _) = api_login(&app, "alice", PASSWORD).await;
    let r = fa(&app, &api, "GET", "wiki.example.com", "/").await;
    assert_eq!(header(&r, "remote-user").as_deref(), Some("alice"));
    // A public app needs nobody.
    add_app(&app, "Status", &["status.example.com"], &[], Access::Public).await;
    let r = fa(&app, &app.client(), "GET", "status.example.com", "/").await;
    assert_eq!(r.status(), 200);
    // All four, empty: an absent one would reach the app as Caddy's placeholder text.
    for name in [
        "remote-user",
        "remote-name",
        "remote-email",
        "remote-groups",
    ] {
        assert_eq!(header(&r, name).as_deref(), Some(""), "{name}");
    }
}

async fn refusals_name_who_and_why(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let admin_id = user(&app, ADMIN).await.id;
    add_user(&app, "bob", "user").await;
    add_app(
        &app,
        "Admin tools",
        &["tools.example.com"],
        &[],
        Access::Restricted {
            roles: vec![],
            groups: vec![],
            users: vec![admin_id],
        },
    )
    .await;
    let bob = signed_in(&app, "bob", PASSWORD).await;
    let r = fa(&app, &bob, "GET", "tools.example.com", "/").await;
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "remote-user"), None);
    let page = r.text().await.unwrap();
    assert!(page.contains("Signed in as <strong>bob</strong>"), "{page}");
    assert!(page.contains("not open to you"), "{page}");
    assert!(page.contains("Ask an administrator"), "{page}");
    let admin = app.admin_client().await;
    assert_eq!(
        fa(&app, &admin, "GET", "tools.example.com", "/")
            .await
            .status(),
        200
    );
    // No app for the host: deny by default, for admins too.
    let r = fa(&app, &admin, "GET", "unknown.example.com", "/").await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("No app is set up for this address")
    );

    // Accounts that are not active hear their status.
    add_app(&app, "Wiki", &["wiki.example.com"], &[], Access::SignedIn).await;
    let pending = add_user(&app, "penny", "user").await;
    sql(
        &app,
        format!("UPDATE users SET status = 'pending' WHERE id = {pending}"),
    )
    .await;
    let penny = signed_in(&app, "penny", PASSWORD).await;
    let r = fa(&app, &penny, "GET", "wiki.example.com", "/").await;
    assert_eq!(r.status(), 403);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("waiting for an administrator")
    );
    let dora = add_user(&app, "dora", "user").await;
    let dora_c = signed_in(&app, "dora", PASSWORD).await;
    assert_eq!(
        fa(&app, &dora_c, "GET", "wiki.example.com", "/")
            .await
            .status(),
        200
    );
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled' WHERE id = {dora}"),
    )
    .await;
    let r = fa(&app, &dora_c, "GET", "wiki.example.com", "/").await;
    assert_eq!(
        r.status(),
        403,
        "a disabled account's session is refused at once"
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("disabled"), "{page}");
    assert!(page.contains("dora"), "{page}");
}

async fn broken_forwarding_headers_are_400_naming_the_header(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let c = app.client();
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "/api/authz/forward-auth",
            &[],
            "missing header X-Forwarded-Method",
        ),
        (
            "/api/authz/forward-auth",
            &[
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Uri", "/"),
            ],
            "missing header X-Forwarded-Host",
        ),
        (
            "/api/authz/forward-auth",
            &[
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "a.example.com"),
                ("X-Forwarded-Uri", "no-slash"),
            ],
            "X-Forwarded-Uri",
        ),
        (
            "/api/authz/auth-request",
            &[("X-Original-Method", "GET")],
            "missing header X-Original-URL",
        ),
        (
            "/api/authz/auth-request",
            &[
                ("X-Original-Method", "GET"),
                ("X-Original-URL", "/relative"),
            ],
            "is not an absolute URL",
        ),
    ];
    for (path, headers, message) in cases {
        let mut req = c.get(app.url(path));
        for (k, v) in *headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{path} {headers:?}");
        let body = r.text().await.unwrap();
        assert!(body.contains(message), "{path}: {body}");
    }
}

async fn api_keys_as_bearer_or_basic_and_never_a_password(db: Db) {
    let Some(app) = start(db, |c| {
        c.auth.rate_limit.max_failures_per_ip = 3;
    })
    .await
    else {
        return;
    };
    add_app(&app, "Wiki", &["wiki.example.com"], &[], Access::SignedIn).await;
    add_user(&app, "carol", "user").await;
    let key = api_key(&app, "carol", "fa").await;
    let c = Client::new();
    let ask = |auth: String| {
        c.get(app.url("/api/authz/forward-auth"))
            .header("Authorization", auth)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "wiki.example.com")
            .header("X-Forwarded-Uri", "/")
            .send()
    };
    let r = ask(format!("Bearer {key}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "remote-user").as_deref(), Some("carol"));
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("carol:{key}"));
    let r = ask(format!("Basic {basic}")).await.unwrap();
    assert_eq!(r.status(), 200, "Basic with the key as password");
    assert_eq!(header(&r, "remote-user").as_deref(), Some("carol"));
    // A password is never checked here: it is the app's own header, the caller anonymous.
    let password = base64::engine::general_purpose::STANDARD.encode(format!("carol:{PASSWORD}"));
    let r = ask(format!("Basic {password}")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "www-authenticate"), None);
    // A key that is not (any more) valid is refused, and counted by the rate limit.
    let bad = format!("hp_{}", "x".repeat(43));
    let r = ask(format!("Bearer {bad}")).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        header(&r, "www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            ask(format!("Bearer {bad}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

async fn every_change_takes_effect_on_the_next_request(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let Crew {
        member: dave,
        group: gid,
        app: app_id,
    } = crew(&app, "dave").await;
    let c = signed_in(&app, "dave", PASSWORD).await;
    let ask = || fa(&app, &c, "GET", "crew.example.com", "/");
    let warm = || async {
        for _ in 0..3 {
            assert_eq!(ask().await.status(), 200);
        }
    };
    warm().await;
    // Membership removed → 403; back → 200.
    sql(
        &app,
        format!("DELETE FROM group_members WHERE user_id = {dave}"),
    )
    .await;
    assert_eq!(ask().await.status(), 403, "group membership removed");
    sql(&app, format!("INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ({gid}, {dave}, 'admin', 0)")).await;
    warm().await;
    // The rule changes: now by role admin only.
    let restricted = Access::Restricted {
        roles: vec![Role::Admin],
        groups: vec![],
        users: vec![],
    };
    app.state
        .db
        .run(move |conn| {
            let hosts = [HostPattern::parse("crew.example.com").unwrap()];
            hallpass::db::apps::update(
                conn,
                app_id,
                &hallpass::db::apps::AppWrite {
                    name: "Crew",
                    url: None,
                    icon: None,
                    hosts: &hosts,
                    paths: &[],
                    access: &restricted,
                    viewers_read_only: false,
                    source: AppSource::Ui,
                },
            )?;
            hallpass::db::settings::bump_rules_version(conn)
        })
        .await
        .unwrap();
    assert_eq!(ask().await.status(), 403, "app rule changed");
    // Role becomes admin (through the admin API) → allowed.
    let (admin, token) = api_login(&app, ADMIN, crate::support::ADMIN_PASSWORD).await;
    let r = admin
        .patch(app.url(&format!("/api/admin/users/{dave}")))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(ask().await.status(), 200, "role changed");
    warm().await;
    // Status: disabled → 403; enabled again: the session had ended (version bumped).
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled' WHERE id = {dave}"),
    )
    .await;
    assert_eq!(ask().await.status(), 403, "disabled");
    sql(
        &app,
        format!("UPDATE users SET status = 'active' WHERE id = {dave}"),
    )
    .await;
    assert_eq!(
        ask().await.status(),
        200,
        "enabled again (the row did not bump the version)"
    );
    // Session revoked (all sessions of the user deleted) → anonymous.
    sql(&app, format!("DELETE FROM sessions WHERE user_id = {dave}")).await;
    assert_eq!(ask().await.status(), 302, "session revoked");
    // Password change ends other sessions.
    let c2 = signed_in(&app, "dave", PASSWORD).await;
    let other = signed_in(&app, "dave", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(
            fa(&app, &other, "GET", "crew.example.com", "/")
                .await
                .status(),
            200
        );
    }
    let token = app.csrf(&c2, "/account").await;
    let r = c2
        .post(app.url("/account/password"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("current_password", PASSWORD),
            ("new_password", "a brand new password"),
            ("new_password_confirm", "a brand new password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    assert_eq!(
        fa(&app, &other, "GET", "crew.example.com", "/")
            .await
            .status(),
        302,
        "password changed: the other session ended"
    );
    // Sign-out.
    let c3 = signed_in(&app, "dave", "a brand new password").await;
    for _ in 0..3 {
        assert_eq!(
            fa(&app, &c3, "GET", "crew.example.com", "/").await.status(),
            200
        );
    }
    let token = app.csrf(&c3, "/account").await;
    c3.post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        fa(&app, &c3, "GET", "crew.example.com", "/").await.status(),
        302,
        "signed out"
    );
}

/// The groups of an API key's owner are cached like a session's: a membership taken away
/// or given back is seen by the very next check, and so is a disabled owner.
async fn a_key_owners_group_change_takes_effect_on_the_next_check(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let Crew {
        member: erin,
        group: gid,
        ..
    } = crew(&app, "erin").await;
    let key = api_key(&app, "erin", "crew").await;
    let c = Client::new();
    let ask = || async {
        c.get(app.url("/api/authz/forward-auth"))
            .bearer_auth(&key)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "crew.example.com")
            .header("X-Forwarded-Uri", "/")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for _ in 0..3 {
        assert_eq!(ask().await, 200, "a member's key");
    }
    sql(
        &app,
        format!("DELETE FROM group_members WHERE user_id = {erin}"),
    )
    .await;
    assert_eq!(ask().await, 403, "membership removed");
    assert_eq!(ask().await, 403, "and still removed");
    sql(&app, format!("INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ({gid}, {erin}, 'admin', 0)")).await;
    assert_eq!(ask().await, 200, "membership back");
    assert_eq!(ask().await, 200);
    sql(
        &app,
        format!("UPDATE users SET status = 'disabled' WHERE id = {erin}"),
    )
    .await;
    assert_eq!(ask().await, 401, "a disabled owner's key is refused");
}

async fn rules_pick_the_most_specific_app_and_the_default_policy(db: Db) {
    let Some(app) = start(db, |c| {
        c.auth.forward.default_policy = hallpass::domain::apps::DefaultPolicy::SignedIn;
    })
    .await
    else {
        return;
    };
    add_user(&app, "erin", "user").await;
    let erin_id = user(&app, "erin").await.id;
    let nobody = Access::Restricted {
        roles: vec![Role::Admin],
        groups: vec![],
        users: vec![],
    };
    add_app(&app, "Everything", &["*.example.com"], &[], Access::Public).await;
    add_app(
        &app,
        "Media admin",
        &["media.example.com"],
        &["/admin"],
        nobody.clone(),
    )
    .await;
    add_app(
        &app,
        "Media",
        &["media.example.com"],
        &[],
        Access::Restricted {
            roles: vec![],
            groups: vec![],
            users: vec![erin_id],
        },
    )
    .await;
    let c = signed_in(&app, "erin", PASSWORD).await;
    let anon = app.client();
    assert_eq!(
        fa(&app, &anon, "GET", "git.example.com", "/")
            .await
            .status(),
        200,
        "wildcard public"
    );
    assert_eq!(
        fa(&app, &anon, "GET", "media.example.com", "/")
            .await
            .status(),
        302,
        "exact over wildcard"
    );
    assert_eq!(
        fa(&app, &c, "GET", "media.example.com", "/").await.status(),
        200
    );
    assert_eq!(
        fa(&app, &c, "GET", "media.example.com", "/admin/x")
            .await
            .status(),
        403,
        "longest path"
    );
    assert_eq!(
        fa(&app, &c, "GET", "media.example.com", "/administrator")
            .await
            .status(),
        200
    );
    // No app: the default policy (signed_in here).
    assert_eq!(
        fa(&app, &anon, "GET", "other.test", "/").await.status(),
        302
    );
    assert_eq!(fa(&app, &c, "GET", "other.test", "/").await.status(), 200);
}

async fn viewers_only_read_read_only_apps(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    add_user(&app, "vic", "viewer").await;
    add_app_with(
        &app,
        "Wiki",
        &["wiki.example.com"],
        &[],
        Access::SignedIn,
        true,
    )
    .await;
    let c = signed_in(&app, "vic", PASSWORD).await;
    for (method, status) in [
        ("GET", 200),
        ("HEAD", 200),
        ("OPTIONS", 200),
        ("POST", 403),
        ("DELETE", 403),
    ] {
        let r = fa(&app, &c, method, "wiki.example.com", "/").await;
        assert_eq!(r.status(), status, "{method}");
    }
    let r = fa(&app, &c, "POST", "wiki.example.com", "/").await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Viewers may open this app but not change")
    );
}

both_databases!(rd_may_point_at_a_configured_apps_host);

/// `rd` to an app's host is honoured even outside the public host and any cookie domain
/// (point 4: "one of the configured apps' hosts"), and only while that app exists.
async fn rd_may_point_at_a_configured_apps_host(db: Db) {
    let Some(app) = start(db, |_| {}).await else {
        return;
    };
    let media = add_app(&app, "Media", &["media.home.arpa"], &[], Access::SignedIn).await;
    add_app(&app, "Lab", &["*.lab.test"], &[], Access::SignedIn).await;
    let sign_in_to = |rd: &'static str| {
        let app = &app;
        async move {
            let c = app.client();
            let token = app.csrf(&c, "/login").await;
            let r = c
                .post(app.url("/login"))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("username", ADMIN),
                    ("password", crate::support::ADMIN_PASSWORD),
                    ("next", "/"),
                    ("rd", rd),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{rd}");
            header(&r, "location").unwrap()
        }
    };
    assert_eq!(
        sign_in_to("https://media.home.arpa/films?x=1").await,
        "https://media.home.arpa/films?x=1"
    );
    assert_eq!(
        sign_in_to("https://nas.lab.test/").await,
        "https://nas.lab.test/"
    );
    assert_eq!(
        sign_in_to("https://lab.test/").await,
        "/",
        "a wildcard is not its own domain"
    );
    assert_eq!(
        sign_in_to("https://media.home.arpa.evil.example/").await,
        "/"
    );
    assert_eq!(sign_in_to("https://other.home.arpa/").await, "/");
    app.state
        .db
        .run(move |c| {
            hallpass::db::apps::delete(c, media)?;
            hallpass::db::settings::bump_rules_version(c)
        })
        .await
        .unwrap();
    assert_eq!(
        sign_in_to("https://media.home.arpa/films").await,
        "/",
        "the app is gone"
    );
}

both_databases!(x_forwarded_for_counts_only_from_trusted_proxies);

/// Bad keys are counted per client address; `X-Forwarded-For` names that client only when
/// the peer is in `server.trusted_proxies`, otherwise the peer itself is the client.
async fn x_forwarded_for_counts_only_from_trusted_proxies(db: Db) {
    for trusted in [false, true] {
        let Some(app) = start(db, |c| {
            c.auth.rate_limit.max_failures_per_ip = 3;
            if trusted {
                c.server.trusted_proxies = "127.0.0.1".parse().unwrap();
            }
        })
        .await
        else {
            return;
        };
        add_app(&app, "Wiki", &["wiki.example.com"], &[], Access::SignedIn).await;
        let bad = format!("hp_{}", "y".repeat(43));
        let mut statuses = Vec::new();
        for i in 0..6 {
            let r = Client::new()
                .get(app.url("/api/authz/forward-auth"))
                .header("Authorization", format!("Bearer {bad}"))
                .header("X-Forwarded-For", format!("10.0.0.{i}"))
                .header("X-Forwarded-Method", "GET")
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "wiki.example.com")
                .header("X-Forwarded-Uri", "/")
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        if trusted {
            assert!(
                statuses.iter().all(|s| *s == 401),
                "six clients, one bad key each: {statuses:?}"
            );
        } else {
            assert_eq!(
                statuses.last(),
                Some(&429),
                "one untrusted peer whatever it claims: {statuses:?}"
            );
        }
    }
}
