//! The second factor after a forward-auth proxy sign-in (issue 14, point 2): off by default
//! (`two_factor::proxy_sign_in_leaves_it_to_the_proxy`), and when the admin chooses it, each
//! browser the proxy vouches for passes Hallpass's own second step once, for as long as its
//! session lasts.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::header::{HeaderMap, HeaderValue};

use crate::support::{Db, MEMBER_PASSWORD, TestApp, add_user, csrf_in};
use crate::two_factor::{code_at, now};

both_databases!(proxy_sign_in_asks_for_the_second_factor_when_chosen);

async fn proxy_sign_in_asks_for_the_second_factor_when_chosen(db: Db) {
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
    // A browser behind the proxy: every request carries the proxy's header for Pat.
    let browser = || proxied(Some("pat"));
    let first = browser();
    assert_eq!(status_of(&app, &first, "/api/auth/me").await, 200);
    let pat = crate::support::user(&app, "pat").await;
    let secret = enrol_through_the_service(&app, &pat).await;
    assert_eq!(
        status_of(&app, &first, "/api/auth/me").await,
        200,
        "off by default: the proxy vouched"
    );

    // The admin turns it on with the settings form; the page and the API show it.
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/settings").await;
    let r = admin
        .post(app.url("/admin/settings/two-factor"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("required", "nobody"),
            ("proxy", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = text(&app, &admin, "/admin/settings").await;
    assert!(page.contains(r#"id="two-factor-proxy" checked"#), "{page}");
    let api: serde_json::Value = admin
        .get(app.url("/api/admin/settings/two-factor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["after_proxy"], true, "{api}");

    // The very next request of that browser is nobody's until the code is given.
    let r = first.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login/two-factor");
    let r = first.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SECOND_STEP_REQUIRED", "{body}");
    let r = first.get(app.url("/login")).send().await.unwrap();
    assert_eq!(
        r.headers()["location"],
        "/login/two-factor",
        "no password form for someone the proxy vouched for"
    );
    let page = text(&app, &first, "/login/two-factor").await;
    assert!(page.contains("pat"), "the step names the account: {page}");

    // A wrong code is refused; the right one signs the browser in and returns to the page.
    let r = send_code(&app, &first, "000000").await;
    assert_ne!(r.status(), 303, "a wrong code does not pass");
    assert_eq!(status_of(&app, &first, "/api/auth/me").await, 401);
    let r = send_code(&app, &first, &code_at(&secret, now() + 30)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account", "back where it started");
    let me: serde_json::Value = first
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "pat");
    assert_eq!(me["auth_method"], "proxy");
    assert_eq!(status_of(&app, &first, "/account").await, 200);

    // Each browser passes for itself: another one with the same header is asked.
    let second = browser();
    assert_eq!(status_of(&app, &second, "/api/auth/me").await, 401);

    // A session signed in as someone else does not count for Pat.
    add_user(&app, "sam", "user").await;
    let shared = proxied(None);
    assert_eq!(
        app.login(&shared, "sam", MEMBER_PASSWORD).await.status(),
        303
    );
    assert_eq!(status_of(&app, &shared, "/api/auth/me").await, 200, "sam");
    let r = shared
        .get(app.url("/api/auth/me"))
        .header("Remote-User", "pat")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the proxy says Pat; Sam's session is not Pat's step"
    );

    // Signing out ends the pass: the browser is asked again.
    let token = csrf_in(&text(&app, &first, "/account").await).unwrap();
    let r = first
        .post(app.url("/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(status_of(&app, &first, "/api/auth/me").await, 401);

    // A PUT that leaves `after_proxy` out keeps it; turning it off lets the proxy vouch again.
    let token = app.csrf(&admin, "/admin/settings").await;
    let put = |body: serde_json::Value| {
        admin
            .put(app.url("/api/admin/settings/two-factor"))
            .header("X-CSRF-Token", token.clone())
            .json(&body)
            .send()
    };
    let kept: serde_json::Value = put(serde_json::json!({"required": "nobody"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kept["after_proxy"], true, "{kept}");
    assert_eq!(status_of(&app, &second, "/api/auth/me").await, 401);
    let r = put(serde_json::json!({"required": "nobody", "after_proxy": false}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&app, &second, "/api/auth/me").await, 200);
    let audit = text(&app, &admin, "/admin/audit?action=settings.two_factor").await;
    assert!(audit.contains("after proxy: yes"), "{audit}");
}

/// A client that reaches Hallpass from the trusted proxy's address (127.0.0.2), keeps cookies
/// like a browser, and sends `Remote-User: user` on every request when given.
fn proxied(user: Option<&str>) -> reqwest::Client {
    let mut headers = HeaderMap::new();
    if let Some(user) = user {
        headers.insert("Remote-User", HeaderValue::from_str(user).unwrap());
    }
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn status_of(app: &TestApp, c: &reqwest::Client, path: &str) -> u16 {
    c.get(app.url(path)).send().await.unwrap().status().as_u16()
}

async fn text(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    let r = c.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

async fn send_code(app: &TestApp, c: &reqwest::Client, code: &str) -> reqwest::Response {
    let token = csrf_in(&text(app, c, "/login/two-factor").await).unwrap();
    c.post(app.url("/login/two-factor"))
        .form(&[("csrf_token", token.as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

/// Sets up Pat's second factor through the service (as the account page would); returns the
/// secret. The confirming code's step is spent: the sign-in uses a later one.
async fn enrol_through_the_service(app: &TestApp, pat: &hallpass::domain::User) -> String {
    let started = hallpass::service::two_factor::start(&app.state.db, &app.state.secret, pat)
        .await
        .unwrap();
    hallpass::service::two_factor::confirm(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        pat,
        &code_at(&started.secret, now()),
    )
    .await
    .unwrap();
    started.secret
}
