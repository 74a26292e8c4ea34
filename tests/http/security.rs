//! CSRF, origin checks, security headers, body limits, error pages.

use hallpass::config::PublicUrl;

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login};

both_databases!(
    forms_without_the_token_are_refused,
    cross_site_requests_are_refused,
    cookie_authenticated_json_needs_the_header,
    every_response_carries_security_headers,
    https_public_url_adds_hsts_and_explains_the_cookie_loop,
    large_bodies_are_refused,
    errors_are_pages_or_json_without_internals,
    pages_vary_on_htmx_once_and_json_does_not,
);

async fn forms_without_the_token_are_refused(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let r = c
        .post(app.url("/logout"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("This form has expired"));
    let r = c
        .post(app.url("/logout"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url("/account/password"))
        .form(&[
            ("current_password", ADMIN_PASSWORD),
            ("new_password", "hijacked-pass"),
            ("new_password_confirm", "hijacked-pass"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still signed in"
    );
    assert_eq!(
        app.login(&app.client(), ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        303,
        "password unchanged"
    );
    // The sign-in form too (login CSRF), and from a client that never loaded it.
    let fresh = app.client();
    let r = fresh
        .post(app.url("/login"))
        .form(&[("username", ADMIN), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // htmx sends the token as a header instead of a field.
    let token = app.csrf(&c, "/account").await;
    let r = c
        .post(app.url("/logout"))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

async fn cross_site_requests_are_refused(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let token = app.csrf(&c, "/account").await;
    for (header, value) in [
        ("Origin", "https://evil.example"),
        ("Origin", "null"),
        ("Referer", "https://evil.example/page"),
    ] {
        let r = c
            .post(app.url("/logout"))
            .header(header, value)
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{header}: {value}");
    }
    let r = c
        .post(app.url("/api/auth/login"))
        .header("Origin", "https://evil.example")
        .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CROSS_SITE_REQUEST");
    let own = format!("http://{}", app.addr);
    let r = c
        .post(app.url("/logout"))
        .header("Origin", own)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "same-origin form posts work");
}

async fn cookie_authenticated_json_needs_the_header(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = c.post(app.url("/api/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "CSRF_TOKEN_INVALID");
    let r = c
        .post(app.url("/api/auth/logout"))
        .header("X-CSRF-Token", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(app.url("/api/auth/logout"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

async fn every_response_carries_security_headers(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    for path in [
        "/login",
        "/healthz",
        "/api/auth/me",
        "/static/style.css",
        "/nope",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
    }
    // No inline script or event handler anywhere, or the CSP would break the page.
    let admin = app.admin_client().await;
    for path in ["/", "/account", "/setup"] {
        let html = admin
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" onclick="),
            "{path}"
        );
    }
    let login = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("<script src=\"/static/htmx.min.js"));
    let htmx = c.get(app.url("/static/htmx.min.js")).send().await.unwrap();
    assert_eq!(htmx.status(), 200);
    assert!(
        htmx.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = htmx.headers()["etag"].clone();
    let again = c
        .get(app.url("/static/htmx.min.js"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

async fn https_public_url_adds_hsts_and_explains_the_cookie_loop(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.server.public_url = Some("https://auth.example.com".parse::<PublicUrl>().unwrap()),
        true,
    )
    .await
    else {
        return;
    };
    let c = app.client();
    let r = c.get(app.url("/login")).send().await.unwrap();
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"cookie-warning\""),
        "plain http while the cookie is Secure"
    );
    assert!(page.contains("https://auth.example.com"));
    let proxied = c
        .get(app.url("/login"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !proxied.contains("id=\"cookie-warning\""),
        "a TLS-terminating proxy is fine"
    );

    let Some(plain) = TestApp::with_admin(db).await else {
        return;
    };
    let page = plain
        .client()
        .get(plain.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"cookie-warning\""));
}

async fn large_bodies_are_refused(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let token = app.csrf(&c, "/login").await;
    let huge = "x".repeat(200 * 1024);
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", ADMIN),
            ("password", huge.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": ADMIN, "password": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

async fn errors_are_pages_or_json_without_internals(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let r = c.get(app.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let page = r.text().await.unwrap();
    assert!(page.contains("class=\"status-code\">404<"));
    assert!(page.contains("Page not found"));
    let r = c
        .get(app.url("/api/no-such-endpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
}

/// `Vary: HX-Request` is set in one place (the edge layer) for every page and fragment, and
/// never twice; JSON answers do not vary on it.
async fn pages_vary_on_htmx_once_and_json_does_not(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.admin_client().await;
    let htmx_varies = |r: &reqwest::Response| {
        r.headers()
            .get_all("vary")
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("").split(','))
            .filter(|v| v.trim().eq_ignore_ascii_case("hx-request"))
            .count()
    };
    for path in [
        "/login",
        "/account",
        "/admin/users",
        "/admin/audit",
        "/no-such-page",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(htmx_varies(&r), 1, "{path}: {:?}", r.headers());
        let r = c
            .get(app.url(path))
            .header("HX-Request", "true")
            .header("HX-Target", "user-table")
            .send()
            .await
            .unwrap();
        assert_eq!(htmx_varies(&r), 1, "{path} (htmx): {:?}", r.headers());
    }
    for path in ["/api/auth/me", "/api/no-such-endpoint"] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(htmx_varies(&r), 0, "{path}: {:?}", r.headers());
    }
}
