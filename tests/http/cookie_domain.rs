//! `session.cookie_domain`: the session set at `auth.example.test` reaches the apps at
//! `*.example.test`, sign-out clears it there, and a public URL outside the domain stops
//! the server at start-up.

use std::process::Command;

use crate::support::echo::{Echo, header};
use crate::support::named::{self, APP, AUTH, Browser, DOMAIN, location, session_set_cookies};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, csrf_in, free_port};

both_databases!(
    the_session_cookie_is_shared_with_the_domain_and_cleared_there,
    the_json_sign_out_clears_the_shared_cookie,
    a_cookie_from_before_the_domain_was_set_is_upgraded_and_cleared,
);

/// Hallpass at `http://auth.example.test:<port>` with the cookie shared on `example.test`.
async fn start_shared(db: Db) -> Option<(TestApp, u16)> {
    let port = free_port();
    let app = TestApp::start(db, |c| named::shared(c, port, port), true).await?;
    Some((app, port))
}

/// Signs in with the form at `auth.example.test:<port>`; returns the sign-in answer.
async fn sign_in(b: &Browser, port: u16) -> reqwest::Response {
    let base = format!("http://{AUTH}:{port}");
    let page = b.http.get(format!("{base}/login")).send().await.unwrap();
    let token = csrf_in(&page.text().await.unwrap()).unwrap();
    b.http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap()
}

async fn the_session_cookie_is_shared_with_the_domain_and_cleared_there(db: Db) {
    let Some((_app, port)) = start_shared(db).await else {
        return;
    };
    let echo = Echo::start().await;
    let app_url = format!("http://{APP}:{}/x", echo.addr.port());
    let b = Browser::new();
    let r = sign_in(&b, port).await;
    assert_eq!(r.status(), 303);
    let set = session_set_cookies(&r);
    assert_eq!(set.len(), 1, "{set:?}");
    let attrs: Vec<&str> = set[0].split("; ").collect();
    for want in [
        format!("Domain={DOMAIN}"),
        "Path=/".into(),
        "HttpOnly".into(),
        "SameSite=Lax".into(),
    ] {
        assert!(attrs.contains(&want.as_str()), "{want} missing: {}", set[0]);
    }
    let session = set[0]
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("hallpass_session=")
        .unwrap()
        .to_owned();

    // A real app on another host of the domain receives the cookie from the browser.
    let seen: serde_json::Value = b
        .http
        .get(&app_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cookie = header(&seen, "cookie").unwrap_or_default();
    assert!(
        cookie.contains(&format!("hallpass_session={session}")),
        "the app at {APP} did not get the session cookie: {cookie:?}"
    );

    // A page of that app cannot use the cookie against Hallpass: its origin is not Hallpass's.
    let home = b
        .http
        .get(format!("http://{AUTH}:{port}/account"))
        .send()
        .await
        .unwrap();
    let token = csrf_in(&home.text().await.unwrap()).unwrap();
    let forged = b
        .http
        .post(format!("http://{AUTH}:{port}/logout"))
        .header("Origin", format!("http://{APP}:{}", echo.addr.port()))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a write from another app's origin");
    assert!(b.has_session_for(&app_url));

    // Sign-out removes the cookie on the domain: the app no longer gets it.
    let r = b
        .http
        .post(format!("http://{AUTH}:{port}/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?notice=signed_out");
    let removal = session_set_cookies(&r);
    assert!(
        removal
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}")) && c.contains("Max-Age=0")),
        "no removal on the domain: {removal:?}"
    );
    assert!(!b.has_session_for(&app_url), "{}", b.cookies_for(&app_url));
    let seen: serde_json::Value = b
        .http
        .get(&app_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !header(&seen, "cookie")
            .unwrap_or_default()
            .contains("hallpass_session"),
        "{seen}"
    );
}

async fn the_json_sign_out_clears_the_shared_cookie(db: Db) {
    let Some((_app, port)) = start_shared(db).await else {
        return;
    };
    let b = Browser::new();
    let base = format!("http://{AUTH}:{port}");
    let r = b
        .http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        session_set_cookies(&r)
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}"))),
        "{:?}",
        session_set_cookies(&r)
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let token = body["csrf_token"].as_str().unwrap();
    let app_url = format!("http://{APP}/");
    assert!(b.has_session_for(&app_url));
    let r = b
        .http
        .post(format!("{base}/api/auth/logout"))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        session_set_cookies(&r)
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}")) && c.contains("Max-Age=0")),
        "{:?}",
        session_set_cookies(&r)
    );
    assert!(!b.has_session_for(&app_url));
    assert!(!b.has_session_for(&format!("{base}/")));
}

/// A browser signed in before `cookie_domain` was set holds a cookie for the sign-in host
/// alone. Sent to `/login?rd=…` by an app's proxy, it gets the cookie again for the domain
/// (else: a redirect loop between the app and the sign-in page); sign-out then removes both.
async fn a_cookie_from_before_the_domain_was_set_is_upgraded_and_cleared(db: Db) {
    let port = free_port();
    let Some(before) = TestApp::start(db, |c| named::at(c, port, port), true).await else {
        return;
    };
    let b = Browser::new();
    let r = sign_in(&b, port).await;
    assert_eq!(r.status(), 303);
    assert!(
        !session_set_cookies(&r)[0].contains("Domain="),
        "host-only without cookie_domain: {:?}",
        session_set_cookies(&r)
    );
    let test_db = before.stop_keep_db().await;
    let port = free_port();
    let _after = TestApp::start_on(test_db, |c| named::shared(c, port, port), true).await;
    let echo = Echo::start().await;
    let app_url = format!("http://{APP}:{}/x", echo.addr.port());
    assert!(!b.has_session_for(&app_url));
    let login = format!(
        "http://{AUTH}:{port}/login?rd={}",
        url::form_urlencoded::byte_serialize(app_url.as_bytes()).collect::<String>()
    );
    let r = b.http.get(&login).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), app_url, "signed in already: straight back");
    assert!(
        session_set_cookies(&r)
            .iter()
            .any(|c| c.contains(&format!("Domain={DOMAIN}"))),
        "the cookie must be set again for the domain: {:?}",
        session_set_cookies(&r)
    );
    assert!(b.has_session_for(&app_url), "{}", b.cookies_for(&app_url));
    let auth = format!("http://{AUTH}:{port}/");
    assert_eq!(
        b.cookies_for(&auth).matches("hallpass_session=").count(),
        2,
        "the host-only cookie and the shared one: {}",
        b.cookies_for(&auth)
    );
    let page = b
        .http
        .get(format!("http://{AUTH}:{port}/account"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let token = csrf_in(&page.text().await.unwrap()).unwrap();
    let r = b
        .http
        .post(format!("http://{AUTH}:{port}/logout"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        !b.has_session_for(&auth),
        "a session cookie survived sign-out: {}",
        b.cookies_for(&auth)
    );
    assert!(!b.has_session_for(&app_url));
}

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// `hallpass check-config` with a clean environment plus `vars`: exit code, stdout, stderr.
fn check_config(vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().copied())
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_up_refuses_a_public_url_outside_the_cookie_domain() {
    const DOMAIN_VAR: &str = "HALLPASS_SESSION__COOKIE_DOMAIN";
    const URL_VAR: &str = "HALLPASS_SERVER__PUBLIC_URL";
    for (public_url, domain, expect) in [
        (None, "example.com", "needs server.public_url"),
        (
            Some("https://example.com.evil.net"),
            "example.com",
            "is not example.com or inside it",
        ),
        (
            Some("https://auth.example.org"),
            "example.com",
            "is not example.com or inside it",
        ),
        (
            Some("https://notexample.com"),
            "example.com",
            "is not example.com or inside it",
        ),
        (
            Some("http://192.168.1.10:8700"),
            "168.1.10",
            "is an address",
        ),
        (
            Some("http://192.168.1.10:8700"),
            "example.com",
            "is not example.com or inside it",
        ),
        (
            Some("https://auth.example.com"),
            "*.example.com",
            "not a domain name",
        ),
        (
            Some("https://auth.example.com"),
            "https://example.com",
            "not a domain name",
        ),
        (
            Some("https://auth.example.com"),
            "10.0.0.1",
            "is an address",
        ),
    ] {
        let mut vars = vec![(DOMAIN_VAR, domain)];
        if let Some(u) = public_url {
            vars.push((URL_VAR, u));
        }
        let (code, _, err) = check_config(&vars);
        assert_eq!(code, Some(2), "{public_url:?} / {domain}: {err}");
        assert!(
            err.contains("session.cookie_domain") && err.contains(expect),
            "{public_url:?} / {domain}: {err}"
        );
    }
    // Accepted, and normalised the way browsers compare it.
    for (public_url, domain, shown) in [
        ("https://auth.example.com", ".Example.COM", "example.com"),
        ("https://example.com", "example.com", "example.com"),
        (
            "https://a.b.bücher.example",
            "bücher.example",
            "xn--bcher-kva.example",
        ),
    ] {
        let (code, out, err) = check_config(&[(DOMAIN_VAR, domain), (URL_VAR, public_url)]);
        assert_eq!(code, Some(0), "{public_url} / {domain}: {err}");
        assert!(
            out.contains(&format!("cookie_domain = \"{shown}\"")),
            "{public_url} / {domain}: {out}"
        );
    }
}
