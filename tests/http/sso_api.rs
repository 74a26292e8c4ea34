//! The JSON API of the SSO and proxy admin screens (issue 16, point 4): `/api/admin/sso…`
//! and `/api/admin/proxy…` against a real OpenID provider (`tests/oidc-idp`), on both
//! databases; the API and the pages share state; `/api/auth/me` says `oidc` after a sign-in
//! through a provider.

use hallpass::domain::sso::{Policy, Provider, Source};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::idp::{ALICE, BOB, DefaultUser, Idp};
use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, api_login, audit_events,
    free_port,
};

pub(crate) const CLIENT_ID: &str = "hallpass";
pub(crate) const CLIENT_SECRET: &str = "api-idp-client-secret-0123456789";

both_databases!(
    providers_are_managed_through_the_api,
    the_api_and_the_pages_share_providers_and_links,
    sign_in_modes_through_the_api,
    the_proxy_preset_and_links_through_the_api,
    only_admins_with_a_csrf_token_or_a_key_may_call,
    me_says_oidc_after_a_sign_in_through_a_provider,
    deleting_a_provider_keeps_the_deleting_admins_own_session,
);

/// A JSON client: a session cookie and its CSRF token, or a Bearer key.
pub(crate) struct Api<'a> {
    app: &'a TestApp,
    c: reqwest::Client,
    token: Option<String>,
    key: Option<String>,
}

impl<'a> Api<'a> {
    async fn login(app: &'a TestApp, username: &str, password: &str) -> Api<'a> {
        let (c, token) = api_login(app, username, password).await;
        Api {
            app,
            c,
            token: Some(token),
            key: None,
        }
    }

    pub(crate) async fn admin(app: &'a TestApp) -> Api<'a> {
        Self::login(app, ADMIN, ADMIN_PASSWORD).await
    }

    pub(crate) async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.app.url(path);
        let req = match method {
            "GET" => self.c.get(url),
            "POST" => self.c.post(url),
            "PUT" => self.c.put(url),
            "PATCH" => self.c.patch(url),
            "DELETE" => self.c.delete(url),
            m => panic!("{m}"),
        };
        let req = match &self.token {
            Some(t) => req.header("X-CSRF-Token", t),
            None => req,
        };
        let req = match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            !text.contains(CLIENT_SECRET),
            "{method} {path} echoed the client secret: {text}"
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// The field names of a 422's `error.fields`.
pub(crate) fn fields(body: &Value) -> Vec<String> {
    body["error"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// An app with the admin and an IdP whose client expects provider `home`.
pub(crate) async fn start_with_idp(db: Db) -> Option<(TestApp, Idp)> {
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

pub(crate) fn home(idp: &Idp) -> Value {
    json!({
        "id": "home",
        "label": "Home IdP",
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    })
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The whole browser round trip through provider `id` as `who`; returns the callback's answer.
async fn sso_login(
    app: &TestApp,
    idp: &Idp,
    c: &reqwest::Client,
    id: &str,
    who: DefaultUser,
) -> reqwest::Response {
    let url = app.url(&format!("/api/auth/oidc/{id}/login?next=/account"));
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303, "starting the sign-in");
    let callback = idp
        .authorize(&location(&r), who.username, who.password)
        .await;
    c.get(callback).send().await.unwrap()
}

async fn me(app: &TestApp, c: &reqwest::Client) -> Value {
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn page(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    let r = c.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

async fn providers_are_managed_through_the_api(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let bob = add_user(&app, "bob", "user").await;

    // Test discovery: found, bad input, and a provider nobody answers for.
    let (s, d) = api
        .send(
            "POST",
            "/api/admin/sso/discovery",
            Some(json!({"issuer": idp.issuer})),
        )
        .await;
    assert_eq!(
        (s, d["ok"].as_bool(), d["outcome"].as_str()),
        (200, Some(true), Some("ok")),
        "{d}"
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with("Discovery succeeded"),
        "{d}"
    );
    let (s, d) = api
        .send(
            "POST",
            "/api/admin/sso/discovery",
            Some(json!({"issuer": "not a url"})),
        )
        .await;
    assert_eq!(
        (s, d["error"]["code"].as_str()),
        (422, Some("VALIDATION_FAILED")),
        "{d}"
    );
    assert_eq!(fields(&d), ["issuer"]);
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let (s, d) = api
        .send(
            "POST",
            "/api/admin/sso/discovery",
            Some(json!({"issuer": nobody})),
        )
        .await;
    assert_eq!(
        (s, d["ok"].as_bool(), d["outcome"].as_str()),
        (200, Some(false), Some("unreachable")),
        "{d}"
    );
    let (s, _) = api
        .send("POST", "/api/admin/sso/discovery", Some(json!([1])))
        .await;
    assert_eq!(s, 422, "a body of the wrong shape");

    // Create: bad input names each field; then the provider; then the same id again.
    let bad = json!({"id": "Not An Id!", "issuer": "", "client_id": ""});
    let (s, e) = api
        .send("POST", "/api/admin/sso/providers", Some(bad))
        .await;
    assert_eq!(s, 422, "{e}");
    for f in ["id", "issuer", "client_id", "client_secret"] {
        assert!(fields(&e).contains(&f.to_owned()), "{f} in {e}");
    }
    let (s, p) = api
        .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["id"], "home");
    assert_eq!(p["has_client_secret"], true);
    assert!(p.get("client_secret").is_none(), "{p}");
    assert_eq!(
        (p["source"].as_str(), p["policy"].as_str()),
        (Some("ui"), Some("link"))
    );
    assert_eq!(p["scopes"], json!(["openid", "profile", "email"]));
    assert_eq!(p["has_previous"], false);
    assert!(
        p["redirect_uri"]
            .as_str()
            .unwrap()
            .ends_with("/api/auth/oidc/home/callback")
    );
    let (s, e) = api
        .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("PROVIDER_ID_TAKEN")),
        "{e}"
    );

    // Read.
    let (s, l) = api.send("GET", "/api/admin/sso/providers", None).await;
    assert_eq!(
        (s, l["providers"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{l}"
    );
    let (s, _) = api.send("GET", "/api/admin/sso/providers/nope", None).await;
    assert_eq!(s, 404);

    // Update without a secret keeps it; an unknown id is 404 (not a new provider).
    let mut edit = home(&idp);
    edit["label"] = json!("Home, renamed");
    edit.as_object_mut().unwrap().remove("client_secret");
    let (s, p) = api
        .send("PUT", "/api/admin/sso/providers/home", Some(edit.clone()))
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["label"].as_str(), p["has_client_secret"].as_bool()),
        (Some("Home, renamed"), Some(true))
    );
    assert_eq!(p["has_previous"], true);
    let (s, e) = api
        .send("PUT", "/api/admin/sso/providers/nope", Some(edit))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("NOT_FOUND")),
        "{e}"
    );
    let (s, e) = api
        .send(
            "PUT",
            "/api/admin/sso/providers/home",
            Some(json!({"issuer": "ftp://x", "client_id": CLIENT_ID})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(fields(&e), ["issuer"]);

    // A provider's own discovery test.
    let (s, d) = api
        .send("POST", "/api/admin/sso/providers/home/discovery", None)
        .await;
    assert_eq!((s, d["ok"].as_bool()), (200, Some(true)), "{d}");
    let (s, _) = api
        .send("POST", "/api/admin/sso/providers/nope/discovery", None)
        .await;
    assert_eq!(s, 404);

    // Links: bad input, a link, the same link again, an unknown provider.
    let (s, e) = api
        .send(
            "POST",
            "/api/admin/sso/providers/home/links",
            Some(json!({"subject": " ", "username": "nobody"})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(fields(&e), ["subject", "username"]);
    let body = json!({"subject": ALICE.sub, "username": "BOB"});
    let (s, link) = api
        .send(
            "POST",
            "/api/admin/sso/providers/home/links",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 201, "{link}");
    assert_eq!(
        (link["user_id"].as_i64(), link["subject"].as_str()),
        (Some(bob), Some(ALICE.sub))
    );
    assert_eq!(
        (link["provider"].as_str(), link["stale"].as_bool()),
        (Some("home"), Some(false))
    );
    let (s, e) = api
        .send("POST", "/api/admin/sso/providers/home/links", Some(body))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("ALREADY_LINKED")),
        "{e}"
    );
    let (s, _) = api
        .send(
            "POST",
            "/api/admin/sso/providers/nope/links",
            Some(json!({"subject": "x", "username": "bob"})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, l) = api
        .send("GET", "/api/admin/sso/providers/home/links", None)
        .await;
    assert_eq!(
        (s, l["links"][0]["username"].as_str()),
        (200, Some("bob")),
        "{l}"
    );

    // The link works (once SSO login is on): Alice at the provider signs in as bob.
    let on = json!({"sso_enabled": true, "local_login_enabled": true});
    assert_eq!(
        api.send("PUT", "/api/admin/sso/modes", Some(on)).await.0,
        200
    );
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "home", ALICE).await;
    assert_eq!(
        (r.status().as_u16(), location(&r)),
        (303, "/account".to_owned())
    );
    assert_eq!(me(&app, &c).await["username"], "bob");

    // The button off and on.
    let (s, p) = api
        .send(
            "PUT",
            "/api/admin/sso/providers/home/enabled",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((s, p["enabled"].as_bool()), (200, Some(false)), "{p}");
    let (s, _) = api
        .send(
            "PUT",
            "/api/admin/sso/providers/home/enabled",
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = api
        .send(
            "PUT",
            "/api/admin/sso/providers/nope/enabled",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, 404);

    // Revert: the label is back, SSO login is off; then nothing is left to revert.
    let (s, p) = api
        .send("POST", "/api/admin/sso/providers/home/revert", None)
        .await;
    assert_eq!(
        (s, p["label"].as_str(), p["has_previous"].as_bool()),
        (200, Some("Home IdP"), Some(false)),
        "{p}"
    );
    let (_, m) = api.send("GET", "/api/admin/sso/modes", None).await;
    assert_eq!(m["sso_enabled"], false, "{m}");
    let (s, e) = api
        .send("POST", "/api/admin/sso/providers/home/revert", None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("NOTHING_TO_REVERT")),
        "{e}"
    );
    let (s, _) = api
        .send("POST", "/api/admin/sso/providers/nope/revert", None)
        .await;
    assert_eq!(s, 404);

    // Unlink, then remove the provider.
    let link_id = link["id"].as_i64().unwrap();
    let (s, u) = api
        .send(
            "DELETE",
            &format!("/api/admin/sso/identities/{link_id}"),
            None,
        )
        .await;
    assert_eq!(
        (
            s,
            u["user_id"].as_i64(),
            u["local_login_turned_on"].as_bool()
        ),
        (200, Some(bob), Some(false)),
        "{u}"
    );
    let (s, _) = api
        .send(
            "DELETE",
            &format!("/api/admin/sso/identities/{link_id}"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, d) = api
        .send("DELETE", "/api/admin/sso/providers/home", None)
        .await;
    assert_eq!((s, d["links_removed"].as_u64()), (200, Some(0)), "{d}");
    let (s, _) = api
        .send("DELETE", "/api/admin/sso/providers/home", None)
        .await;
    assert_eq!(s, 404);

    // Audited like the pages' actions, under the admin's name.
    for action in [
        "sso.provider.create",
        "sso.provider.update",
        "sso.provider.disable",
        "sso.provider.revert",
        "sso.provider.delete",
        "identity.link",
        "identity.unlink",
    ] {
        let events = audit_events(&app, action).await;
        assert!(
            events.iter().any(|e| e.actor == ADMIN),
            "no {action} by the admin: {events:?}"
        );
    }
}

async fn the_api_and_the_pages_share_providers_and_links(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let admin = app.admin_client().await;
    add_user(&app, "carol", "user").await;

    // Made through the API, shown by the pages.
    let (s, _) = api
        .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    assert_eq!(s, 201);
    let (s, _) = api
        .send(
            "POST",
            "/api/admin/sso/providers/home/links",
            Some(json!({"subject": "api-made-sub", "username": "carol"})),
        )
        .await;
    assert_eq!(s, 201);
    assert!(page(&app, &admin, "/admin/sso").await.contains("Home IdP"));
    let links = page(&app, &admin, "/admin/sso/providers/home/links").await;
    assert!(
        links.contains("api-made-sub") && links.contains("carol"),
        "{links}"
    );

    // Made on the pages, shown by the API.
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("id", "work"),
            ("label", "Work IdP"),
            ("issuer", idp.issuer.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = admin
        .post(app.url("/admin/sso/providers/work/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("subject", "page-made-sub"),
            ("username", "carol"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (s, p) = api.send("GET", "/api/admin/sso/providers/work", None).await;
    assert_eq!(
        (s, p["label"].as_str(), p["has_client_secret"].as_bool()),
        (200, Some("Work IdP"), Some(true)),
        "{p}"
    );
    let (_, l) = api
        .send("GET", "/api/admin/sso/providers/work/links", None)
        .await;
    assert_eq!(l["links"][0]["subject"], "page-made-sub", "{l}");

    // The page's duplicate id is the same refusal, said on the form.
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("id", "home"),
            ("issuer", idp.issuer.as_str()),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("exists already."));

    // The page's manual link checks are the API's: same fields, same words.
    let r = admin
        .post(app.url("/admin/sso/providers/work/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("subject", ""),
            ("username", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Enter the subject (sub) of the identity."),
        "{html}"
    );
    assert!(
        html.contains("Enter the username of the account to link."),
        "{html}"
    );
    let (_, e) = api
        .send(
            "POST",
            "/api/admin/sso/providers/work/links",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        e["error"]["message"],
        "Enter the subject (sub) of the identity. Enter the username of the account to link."
    );
}

async fn sign_in_modes_through_the_api(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let (s, m) = api.send("GET", "/api/admin/sso/modes", None).await;
    assert_eq!(s, 200);
    // No provider: SSO off in force, the password form on.
    assert_eq!(
        (
            m["sso_in_force"].as_bool(),
            m["local_login_in_force"].as_bool()
        ),
        (Some(false), Some(true)),
        "{m}"
    );

    let (s, e) = api
        .send(
            "PUT",
            "/api/admin/sso/modes",
            Some(json!({"sso_enabled": false, "local_login_enabled": false})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(fields(&e), ["local_login_enabled"]);
    let (s, _) = api
        .send(
            "PUT",
            "/api/admin/sso/modes",
            Some(json!({"sso_enabled": true})),
        )
        .await;
    assert_eq!(s, 422, "both switches are required");

    api.send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    // Password sign-in stays on until an admin has a link.
    let off = json!({"sso_enabled": true, "local_login_enabled": false});
    let (s, e) = api
        .send("PUT", "/api/admin/sso/modes", Some(off.clone()))
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least one active admin"),
        "{e}"
    );
    let (s, _) = api
        .send(
            "POST",
            "/api/admin/sso/providers/home/links",
            Some(json!({"subject": ALICE.sub, "username": ADMIN})),
        )
        .await;
    assert_eq!(s, 201);
    let (s, m) = api.send("PUT", "/api/admin/sso/modes", Some(off)).await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (
            m["sso_enabled"].as_bool(),
            m["local_login_enabled"].as_bool(),
            m["sso_in_force"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    // The page sees it: no password form.
    let login = app
        .client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !login.contains("password-form") && login.contains("Home IdP"),
        "{login}"
    );
    assert_eq!(audit_events(&app, "settings.sign_in").await.len(), 1);
}

async fn the_proxy_preset_and_links_through_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let api = Api::admin(&app).await;
    let admin = app.admin_client().await;
    add_user(&app, "dave", "user").await;

    let (s, p) = api.send("GET", "/api/admin/proxy", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        (p["preset"].clone(), p["previous_preset"].clone()),
        (Value::Null, Value::Null),
        "{p}"
    );
    let (s, p) = api
        .send(
            "PUT",
            "/api/admin/proxy/preset",
            Some(json!({"preset": "authelia"})),
        )
        .await;
    assert_eq!(
        (s, p["preset"].as_str(), p["headers"]["user"].as_str()),
        (200, Some("authelia"), Some("Remote-User")),
        "{p}"
    );
    assert_eq!(p["previous_preset"], "config");
    // The page shows the preset chosen through the API.
    let html = page(&app, &admin, "/admin/proxy").await;
    assert!(html.contains("id=\"preset-authelia\" checked"), "{html}");
    let (s, e) = api
        .send(
            "PUT",
            "/api/admin/proxy/preset",
            Some(json!({"preset": "bogus"})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(fields(&e), ["preset"]);
    let (s, p) = api
        .send("POST", "/api/admin/proxy/preset/revert", None)
        .await;
    assert_eq!((s, p["preset"].clone()), (200, Value::Null), "{p}");
    let (s, e) = api
        .send("POST", "/api/admin/proxy/preset/revert", None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("NOTHING_TO_REVERT")),
        "{e}"
    );

    // Links: bad input, a link, the same again; the page lists it; unlink through the API.
    let (s, e) = api
        .send(
            "POST",
            "/api/admin/proxy/links",
            Some(json!({"proxy_user": "", "username": "nobody"})),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(fields(&e), ["proxy_user", "username"]);
    let body = json!({"proxy_user": "dave-at-proxy", "username": "dave"});
    let (s, link) = api
        .send("POST", "/api/admin/proxy/links", Some(body.clone()))
        .await;
    assert_eq!(
        (s, link["provider"].as_str(), link["subject"].as_str()),
        (201, Some("proxy"), Some("dave-at-proxy")),
        "{link}"
    );
    let (s, e) = api.send("POST", "/api/admin/proxy/links", Some(body)).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("ALREADY_LINKED")),
        "{e}"
    );
    assert!(
        page(&app, &admin, "/admin/proxy")
            .await
            .contains("dave-at-proxy")
    );
    let (_, l) = api.send("GET", "/api/admin/proxy/links", None).await;
    assert_eq!(l["links"].as_array().map(Vec::len), Some(1), "{l}");
    let id = link["id"].as_i64().unwrap();
    let (s, _) = api
        .send("DELETE", &format!("/api/admin/sso/identities/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        !page(&app, &admin, "/admin/proxy")
            .await
            .contains("dave-at-proxy")
    );

    // A link made on the page shows in the API.
    let token = app.csrf(&admin, "/admin/proxy").await;
    let r = admin
        .post(app.url("/admin/proxy/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("proxy_user", "page-proxy-user"),
            ("username", "dave"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, l) = api.send("GET", "/api/admin/proxy/links", None).await;
    assert_eq!(l["links"][0]["subject"], "page-proxy-user", "{l}");
    assert_eq!(audit_events(&app, "settings.proxy_preset").await.len(), 2);
}

async fn only_admins_with_a_csrf_token_or_a_key_may_call(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    add_user(&app, "vic", "viewer").await;
    add_user(&app, "ursula", "user").await;
    let routes: [(&str, &str, Option<Value>); 4] = [
        ("GET", "/api/admin/sso/providers", None),
        ("POST", "/api/admin/sso/providers", Some(home(&idp))),
        (
            "PUT",
            "/api/admin/proxy/preset",
            Some(json!({"preset": "authentik"})),
        ),
        (
            "POST",
            "/api/admin/proxy/links",
            Some(json!({"proxy_user": "u", "username": "vic"})),
        ),
    ];
    for who in ["vic", "ursula"] {
        let api = Api::login(&app, who, MEMBER_PASSWORD).await;
        for (m, p, b) in &routes {
            let (s, e) = api.send(m, p, b.clone()).await;
            assert_eq!(
                (s, e["error"]["code"].as_str()),
                (403, Some("FORBIDDEN")),
                "{who} {m} {p}"
            );
        }
    }
    // The admin's cookie without the CSRF header: refused, nothing written.
    let mut api = Api::admin(&app).await;
    api.token = None;
    let (s, e) = api
        .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("CSRF_TOKEN_INVALID")),
        "{e}"
    );
    let (s, l) = api.send("GET", "/api/admin/sso/providers", None).await;
    assert_eq!((s, l["providers"].as_array().map(Vec::len)), (200, Some(0)));
    // An admin's key needs no CSRF token.
    let admin = crate::support::user(&app, ADMIN).await;
    let key = hallpass::service::api_keys::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &admin,
        hallpass::domain::NewApiKey::parse("sso", None).unwrap(),
    )
    .await
    .unwrap();
    let keyed = Api {
        app: &app,
        c: app.client(),
        token: None,
        key: Some(key.secret),
    };
    let (s, p) = keyed
        .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
        .await;
    assert_eq!(s, 201, "{p}");
    let (s, _) = keyed
        .send(
            "PUT",
            "/api/admin/proxy/preset",
            Some(json!({"preset": "authentik"})),
        )
        .await;
    assert_eq!(s, 200);
    // Anonymous: 401.
    let anon = Api {
        app: &app,
        c: app.client(),
        token: None,
        key: None,
    };
    let (s, _) = anon.send("GET", "/api/admin/proxy", None).await;
    assert_eq!(s, 401);
}

pub(crate) fn env_provider(issuer: &str) -> Provider {
    Provider {
        id: "idp".to_owned(),
        label: "Env IdP".to_owned(),
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: Some(SecretString::from(CLIENT_SECRET.to_owned())),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        subject_claim: "sub".into(),
        username_claim: "preferred_username".into(),
        email_claim: "email".into(),
        groups_claim: None,
        policy: Policy::Auto,
        enabled: true,
        source: Source::Env,
    }
}

async fn me_says_oidc_after_a_sign_in_through_a_provider(db: Db) {
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let Some(app) = TestApp::start(
        db,
        move |c| c.sso.providers.push(env_provider(&issuer)),
        true,
    )
    .await
    else {
        return;
    };
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/idp/callback")],
    )
    .await;
    let c = app.client();
    let r = sso_login(&app, &idp, &c, "idp", BOB).await;
    assert_eq!(location(&r), "/account");
    let body = me(&app, &c).await;
    assert_eq!(
        (body["username"].as_str(), body["auth_method"].as_str()),
        (Some("bob"), Some("oidc")),
        "{body}"
    );
    // Still a browser session: writes need its CSRF token, which `me` hands out.
    let token = body["csrf_token"]
        .as_str()
        .expect("a CSRF token for the OIDC session")
        .to_owned();
    let write = |t: Option<&str>| {
        let req = c
            .post(app.url("/api/me/api-keys"))
            .json(&json!({"name": "from-oidc"}));
        match t {
            Some(t) => req.header("X-CSRF-Token", t.to_owned()),
            None => req,
        }
    };
    assert_eq!(write(None).send().await.unwrap().status(), 403);
    assert_eq!(write(Some(&token)).send().await.unwrap().status(), 201);
    // A second request reads the method from the session cache: still `oidc`.
    assert_eq!(me(&app, &c).await["auth_method"], "oidc");

    // A password sign-in in the same browser is a plain session again.
    let (pc, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(me(&app, &pc).await["auth_method"], "session");
    let r = c
        .post(app.url("/api/auth/login"))
        .header("X-CSRF-Token", &token)
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again = me(&app, &c).await;
    assert_eq!(
        (again["username"].as_str(), again["auth_method"].as_str()),
        (Some(ADMIN), Some("session")),
        "{again}"
    );

    // An environment provider is read-only through the API as on the pages.
    let api = Api::admin(&app).await;
    let (s, p) = api.send("GET", "/api/admin/sso/providers/idp", None).await;
    assert_eq!(
        (s, p["source"].as_str(), p["has_client_secret"].as_bool()),
        (200, Some("env"), Some(true)),
        "{p}"
    );
    let mut edit = home(&idp);
    edit["label"] = json!("changed");
    let (s, e) = api
        .send("PUT", "/api/admin/sso/providers/idp", Some(edit))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("PROVIDER_READ_ONLY")),
        "{e}"
    );
    let (s, e) = api
        .send(
            "PUT",
            "/api/admin/sso/providers/idp/enabled",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("PROVIDER_READ_ONLY")),
        "{e}"
    );
    let (s, e) = api
        .send("DELETE", "/api/admin/sso/providers/idp", None)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (409, Some("PROVIDER_READ_ONLY")),
        "{e}"
    );
}

/// Deleting a provider ends the sessions of the accounts linked through it, but not the
/// session of the admin who deletes it when their own account is one of them (as when they
/// unlink themselves), through the API and the page alike.
async fn deleting_a_provider_keeps_the_deleting_admins_own_session(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    add_user(&app, "bob", "user").await;
    let admin = Api::admin(&app).await;
    let bob = Api::login(&app, "bob", MEMBER_PASSWORD).await;
    let link_both = || async {
        let (s, p) = admin
            .send("POST", "/api/admin/sso/providers", Some(home(&idp)))
            .await;
        assert_eq!(s, 201, "{p}");
        for (sub, username) in [(ALICE.sub, ADMIN), (BOB.sub, "bob")] {
            let body = json!({"subject": sub, "username": username});
            let (s, l) = admin
                .send("POST", "/api/admin/sso/providers/home/links", Some(body))
                .await;
            assert_eq!(s, 201, "{l}");
        }
    };

    // Through the API.
    link_both().await;
    assert_eq!(admin.send("GET", "/api/auth/me", None).await.0, 200);
    let (s, d) = admin
        .send("DELETE", "/api/admin/sso/providers/home", None)
        .await;
    assert_eq!((s, d["links_removed"].as_i64()), (200, Some(2)), "{d}");
    assert_eq!(admin.send("GET", "/api/auth/me", None).await.0, 200);
    assert_eq!(bob.send("GET", "/api/auth/me", None).await.0, 401);

    // Through the page, with a browser session made after the links.
    let bob = Api::login(&app, "bob", MEMBER_PASSWORD).await;
    link_both().await;
    let browser = app.admin_client().await;
    let token = app.csrf(&browser, "/admin/sso/providers/home/delete").await;
    let r = browser
        .post(app.url("/admin/sso/providers/home/delete"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(audit_events(&app, "sso.provider.delete").await.len(), 2);
    let r = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the deleting admin was signed out");
    assert_eq!(bob.send("GET", "/api/auth/me", None).await.0, 401);
    // The admin's API session predates nothing of this: it was kept at the first delete,
    // and the second one bumped the account again, from a session that was not it.
    assert_eq!(admin.send("GET", "/api/auth/me", None).await.0, 401);
}
