//! `/login?rd=<absolute URL>`: back to the app after signing in — with the form, the JSON
//! API, single sign-on and the setup wizard — but only to hosts of ours (Hallpass's public
//! host, the cookie domain, the apps); every open-redirect form lands on `/` (or `next`).

use hallpass::domain::sso::{Policy, Provider, Source};
use secrecy::SecretString;

use crate::support::idp::{BOB, Idp};
use crate::support::named::{self, AUTH, Browser, location};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, csrf_in, free_port};

both_databases!(
    rd_brings_the_form_and_json_sign_in_back_to_the_app,
    rd_outside_our_hosts_is_ignored,
    rd_survives_single_sign_on,
    rd_survives_the_setup_wizard,
);

/// An app's page, inside the cookie domain (nothing needs to listen there).
const APP_PAGE: &str = "http://app.example.test:9/library?item=42";

fn encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Hallpass at `http://auth.example.test:<port>`, the cookie shared on `example.test`.
async fn start(db: Db, admin: bool) -> Option<(TestApp, String)> {
    let port = free_port();
    let app = TestApp::start(db, |c| named::shared(c, port, port), admin).await?;
    Some((app, format!("http://{AUTH}:{port}")))
}

/// The form sign-in with these extra fields; returns the answer.
async fn form_sign_in(b: &Browser, base: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let page = b.http.get(format!("{base}/login")).send().await.unwrap();
    let token = csrf_in(&page.text().await.unwrap()).unwrap();
    let mut form = vec![
        ("csrf_token", token.as_str()),
        ("username", ADMIN),
        ("password", ADMIN_PASSWORD),
    ];
    form.extend_from_slice(fields);
    b.http
        .post(format!("{base}/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn rd_brings_the_form_and_json_sign_in_back_to_the_app(db: Db) {
    let Some((_app, base)) = start(db, true).await else {
        return;
    };
    let b = Browser::new();
    // The sign-in page carries the address in its form.
    let page = b
        .http
        .get(format!("{base}/login?rd={}", encoded(APP_PAGE)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "<input type=\"hidden\" name=\"rd\" value=\"{APP_PAGE}\">"
        )),
        "{html}"
    );
    let r = form_sign_in(&b, &base, &[("rd", APP_PAGE), ("next", "/account")]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), APP_PAGE, "rd wins over next");
    // Signed in already: straight back, to Hallpass's own host too (any port).
    let own = format!("{base}/admin/users");
    let r = b
        .http
        .get(format!("{base}/login?rd={}", encoded(&own)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), own);
    // Normalised the way the browser will read it: what is followed is what was checked.
    let r = b
        .http
        .get(format!(
            "{base}/login?rd={}",
            encoded("HTTP://Media.EXAMPLE.test:80/A?b=%C3%A9")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "http://media.example.test/A?b=%C3%A9");

    // The JSON sign-in hands the address back when it is ours, and only then.
    let json = Browser::new();
    for (rd, expect) in [
        (Some(APP_PAGE), Some(APP_PAGE)),
        (Some("https://evil.example/"), None),
        (None, None),
    ] {
        let mut body = serde_json::json!({ "username": ADMIN, "password": ADMIN_PASSWORD });
        if let Some(rd) = rd {
            body["rd"] = rd.into();
        }
        let r = json
            .http
            .post(format!("{base}/api/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let me: serde_json::Value = r.json().await.unwrap();
        assert_eq!(me["username"], ADMIN);
        assert_eq!(me["redirect_to"].as_str(), expect, "{rd:?}: {me}");
    }
}

/// Every form of open redirect the issue lists, sent as the browser would (percent-encoded
/// once in the query or the form).
const EVIL: &[&str] = &[
    "//evil.example",
    "//evil.example/%2F..",
    "https://evil.example/",
    "HTTPS://EVIL.EXAMPLE/",
    "https://example.test.evil.example/",
    "https://app.example.test.evil.example/x",
    "/\\evil.example",
    "\\/evil.example",
    "https://evil.example\\@app.example.test/",
    "https://app.example.test@evil.example/",
    "https://evil.example%2F@app.example.test/",
    "https:evil.example",
    "https:/evil.example",
    "javascript:alert(document.cookie)",
    "javascript://app.example.test/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "https%3A%2F%2Fevil.example",
    "https://app.exаmple.test/",
    "ftp://app.example.test/",
    "http://127.0.0.2/",
];

async fn rd_outside_our_hosts_is_ignored(db: Db) {
    let Some((_app, base)) = start(db, true).await else {
        return;
    };
    let b = Browser::new();
    for rd in EVIL {
        let html = b
            .http
            .get(format!("{base}/login?rd={}", encoded(rd)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("name=\"rd\""), "{rd}: the form kept it");
        assert!(!html.contains("&amp;rd="), "{rd}: the SSO links kept it");
    }
    // The form: ignored, to `next` (or `/`).
    for (i, rd) in EVIL.iter().enumerate().filter(|(i, _)| i % 4 == 0) {
        let c = Browser::new();
        let next = if i % 8 == 0 { "/account" } else { "" };
        let r = form_sign_in(&c, &base, &[("rd", rd), ("next", next)]).await;
        assert_eq!(r.status(), 303, "{rd}");
        let want = if next.is_empty() { "/" } else { next };
        assert_eq!(location(&r), want, "{rd}");
    }
    // Signed in: the sign-in page sends everyone home — though it does follow an address of
    // ours (so what is ignored above is ignored by the rule, not for lack of `rd` support).
    let r = form_sign_in(&b, &base, &[]).await;
    assert_eq!(r.status(), 303);
    let r = b
        .http
        .get(format!("{base}/login?rd={}", encoded(APP_PAGE)))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), APP_PAGE);
    for rd in EVIL {
        let r = b
            .http
            .get(format!("{base}/login?rd={}", encoded(rd)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{rd}");
        assert_eq!(location(&r), "/", "{rd}");
    }
    // Control characters never reach the rule: the address check refuses them first.
    let r = b
        .http
        .get(format!(
            "{base}/login?rd={}",
            encoded("https://app.example.test/\r\nSet-Cookie: a=b")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
}

async fn rd_survives_single_sign_on(db: Db) {
    const SECRET: &str = "idp-client-secret-0123456789";
    let idp = Idp::start(&Idp::default_users()).await;
    let port = free_port();
    let base = format!("http://{AUTH}:{port}");
    let issuer = idp.issuer.clone();
    let Some(_app) = TestApp::start(
        db,
        |c| {
            named::shared(c, port, port);
            c.sso.providers.push(Provider {
                id: "idp".into(),
                label: "Home IdP".into(),
                issuer,
                client_id: "hallpass".into(),
                client_secret: Some(SecretString::from(SECRET.to_owned())),
                scopes: vec!["openid".into(), "profile".into(), "email".into()],
                subject_claim: "sub".into(),
                username_claim: "preferred_username".into(),
                email_claim: "email".into(),
                policy: Policy::Auto,
                enabled: true,
                source: Source::Env,
                groups_claim: None,
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
        &[format!("{base}/api/auth/oidc/idp/callback")],
    )
    .await;
    let b = Browser::new();
    let html = b
        .http
        .get(format!("{base}/login?rd={}", encoded(APP_PAGE)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (askama's `urlencode` leaves `/` as is.)
    let button = "href=\"/api/auth/oidc/idp/login?next=/&amp;rd=http%3A//app.example.test%3A9/library%3Fitem%3D42\"";
    assert!(html.contains(button), "{button} not in {html}");
    let r = b
        .http
        .get(format!(
            "{base}/api/auth/oidc/idp/login?next=%2F&rd={}",
            encoded(APP_PAGE)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let callback = idp
        .authorize(&location(&r), BOB.username, BOB.password)
        .await;
    let r = b.http.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), APP_PAGE);
    assert!(b.has_session_for(APP_PAGE), "signed in for the app too");
    // An address that is not ours is dropped when the round trip starts.
    let c = Browser::new();
    let r = c
        .http
        .get(format!(
            "{base}/api/auth/oidc/idp/login?next=%2Faccount&rd={}",
            encoded("https://evil.example/")
        ))
        .send()
        .await
        .unwrap();
    let callback = idp
        .authorize(&location(&r), BOB.username, BOB.password)
        .await;
    let r = c.http.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/account");
}

async fn rd_survives_the_setup_wizard(db: Db) {
    let Some((app, base)) = start(db, false).await else {
        return;
    };
    let b = Browser::new();
    let r = b
        .http
        .get(format!("{base}/login?rd={}", encoded(APP_PAGE)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let setup = location(&r);
    assert_eq!(setup, format!("/setup?rd={}", encoded(APP_PAGE)));
    let html = b
        .http
        .get(format!("{base}{setup}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!(
            "<input type=\"hidden\" name=\"rd\" value=\"{APP_PAGE}\">"
        )),
        "{html}"
    );
    // Other pages still lead to the bare wizard.
    let r = b
        .http
        .get(format!("{base}/account?rd={}", encoded(APP_PAGE)))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/setup");
    let token = csrf_in(&html).unwrap();
    let code = app.state.setup.code().unwrap();
    let r = b
        .http
        .post(format!("{base}/setup"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("setup_code", code.as_str()),
            ("username", "alice"),
            ("email", "alice@example.com"),
            ("password", "a long passphrase"),
            ("password_confirm", "a long passphrase"),
            ("rd", APP_PAGE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), APP_PAGE);
    assert!(b.has_session_for(APP_PAGE));
}
