//! The OpenAPI document against the real answers of `/api/admin/apps…`, `/api/admin/sso…`
//! and `/api/admin/proxy…` (issue 16, point 3): every operation is called over HTTP, on both
//! databases, and each answer is validated against the schema the document gives for its
//! operation and status, the success answers and the documented errors alike.

use serde_json::{Value, json};

use crate::apps::file_app;
use crate::openapi::{assert_conforms, assert_documented, document};
use crate::sso_api::{Api, fields, home, start_with_idp};
use crate::support::idp::ALICE;
use crate::support::{ADMIN, Db, TestApp, add_user, free_port};

both_databases!(
    apps_answer_as_documented,
    sso_answers_as_documented,
    proxy_answers_as_documented,
);

/// Calls `method path` and checks the answer has `status` and the document's schema for it.
async fn call(
    api: &Api<'_>,
    doc: &Value,
    (method, template): (&str, &str),
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (s, answer) = api.send(method, path, body).await;
    assert_eq!(s, status, "{method} {path}: {answer}");
    if answer.is_null() {
        assert_documented(doc, method, template, status);
    } else {
        assert_conforms(doc, method, template, status, &answer);
    }
    answer
}

const APPS: &str = "/api/admin/apps";
const APP: &str = "/api/admin/apps/{id}";

async fn apps_answer_as_documented(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| c.apps.push(file_app("Grafana", "grafana.example.com")),
        true,
    )
    .await
    else {
        return;
    };
    let doc = document(&app).await;
    let api = Api::admin(&app).await;
    let bob = add_user(&app, "bob", "user").await;
    add_user(&app, "vic", "viewer").await;
    // A fixture of another module: created, not checked here.
    let (s, family) = api
        .send("POST", "/api/admin/groups", Some(json!({"name": "Family"})))
        .await;
    assert_eq!(s, 201, "{family}");

    // A restricted app listing a role, groups by name and by id, and a user: every list of
    // the answer has an entry to check.
    let restricted = json!({
        "name": "Media",
        "url": "https://media.example.com/",
        "icon": "🎬",
        "hosts": ["media.example.com", "*.media.example.com"],
        "paths": ["/library"],
        "access": "restricted",
        "roles": ["admin"],
        "groups": ["Household", family["id"]],
        "users": ["bob"],
        "viewers_read_only": true,
    });
    let created = call(&api, &doc, ("POST", APPS), APPS, Some(restricted), 201).await;
    assert_eq!(created["groups"].as_array().map(Vec::len), Some(2));
    assert_eq!(created["users"][0]["id"].as_i64(), Some(bob));
    let id = created["id"].as_i64().unwrap();
    let at = format!("{APPS}/{id}");

    // The list holds the file's app too (`source: file`, `url` set, `icon` null).
    let list = call(&api, &doc, ("GET", APPS), APPS, None, 200).await;
    let sources: Vec<&str> = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["file", "ui"], "{list}");
    call(&api, &doc, ("GET", APP), &at, None, 200).await;

    // Replace: a public app without link or icon (null in the answer).
    let public = json!({"name": "Media", "hosts": ["media.example.com"], "access": "public"});
    let replaced = call(&api, &doc, ("PUT", APP), &at, Some(public), 200).await;
    assert_eq!(
        (replaced["url"].clone(), replaced["roles"].clone()),
        (Value::Null, json!([]))
    );
    let patched = call(
        &api,
        &doc,
        ("PATCH", APP),
        &at,
        Some(json!({"access": "signed_in", "icon": "M", "url": null})),
        200,
    )
    .await;
    assert_eq!(patched["access"], "signed_in");

    // The rule tester: a match with a path, a refusal with its reason, and no app at all.
    let test = ("POST", "/api/admin/apps/test");
    let t = call(
        &api,
        &doc,
        test,
        test.1,
        Some(json!({"url": "https://grafana.example.com/d/1", "username": "bob"})),
        200,
    )
    .await;
    assert_eq!(
        (t["decision"].as_str(), t["reason"].as_str()),
        (Some("deny"), Some("not_listed")),
        "{t}"
    );
    assert_eq!(t["app"]["matched_path"], Value::Null);
    let t = call(
        &api,
        &doc,
        test,
        test.1,
        Some(json!({"url": "https://media.example.com/", "username": "vic", "method": "POST"})),
        200,
    )
    .await;
    assert_eq!(t["decision"], "allow", "{t}");
    let t = call(
        &api,
        &doc,
        test,
        test.1,
        Some(json!({"url": "nowhere.example.net"})),
        200,
    )
    .await;
    assert_eq!(
        (t["reason"].as_str(), t["app"].clone()),
        (Some("no_app"), Value::Null),
        "{t}"
    );

    // Documented errors: field errors, an unknown id, an app of the file.
    let bad = json!({"name": "", "hosts": [], "access": "nobody", "roles": ["king"]});
    let e = call(&api, &doc, ("POST", APPS), APPS, Some(bad), 422).await;
    for f in ["name", "hosts", "access", "roles"] {
        assert!(fields(&e).contains(&f.to_owned()), "{f} in {e}");
    }
    let e = call(&api, &doc, test, test.1, Some(json!({"url": ""})), 422).await;
    assert_eq!(fields(&e), ["url"]);
    call(
        &api,
        &doc,
        ("GET", APP),
        "/api/admin/apps/999999",
        None,
        404,
    )
    .await;
    call(
        &api,
        &doc,
        ("PATCH", APP),
        "/api/admin/apps/999999",
        Some(json!({})),
        404,
    )
    .await;
    let grafana = list["apps"][0]["id"].as_i64().unwrap();
    let file_at = format!("{APPS}/{grafana}");
    let e = call(&api, &doc, ("DELETE", APP), &file_at, None, 409).await;
    assert_eq!(e["error"]["code"], "APP_READ_ONLY");
    let e = call(
        &api,
        &doc,
        ("PUT", APP),
        &file_at,
        Some(json!({"name": "G"})),
        409,
    )
    .await;
    assert_eq!(e["error"]["code"], "APP_READ_ONLY");

    call(&api, &doc, ("DELETE", APP), &at, None, 204).await;
    call(&api, &doc, ("DELETE", APP), &at, None, 404).await;
}

const PROVIDERS: &str = "/api/admin/sso/providers";
const PROVIDER: &str = "/api/admin/sso/providers/{id}";
const DISCOVERY: &str = "/api/admin/sso/discovery";
const MODES: &str = "/api/admin/sso/modes";
const LINKS: &str = "/api/admin/sso/providers/{id}/links";
const IDENTITY: &str = "/api/admin/sso/identities/{id}";

async fn sso_answers_as_documented(db: Db) {
    let Some((app, idp)) = start_with_idp(db).await else {
        return;
    };
    let doc = document(&app).await;
    let api = Api::admin(&app).await;
    add_user(&app, "bob", "user").await;

    // Discovery before saving: found, nobody there, not a URL.
    let post = ("POST", DISCOVERY);
    let d = call(
        &api,
        &doc,
        post,
        DISCOVERY,
        Some(json!({"issuer": idp.issuer})),
        200,
    )
    .await;
    assert_eq!(d["outcome"], "ok");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let d = call(
        &api,
        &doc,
        post,
        DISCOVERY,
        Some(json!({"issuer": nobody})),
        200,
    )
    .await;
    assert_eq!(
        (d["ok"].as_bool(), d["outcome"].as_str()),
        (Some(false), Some("unreachable"))
    );
    let e = call(
        &api,
        &doc,
        post,
        DISCOVERY,
        Some(json!({"issuer": "not a url"})),
        422,
    )
    .await;
    assert_eq!(fields(&e), ["issuer"]);

    // Providers: create (with a groups claim, then without), list, get, update.
    let mut with_groups = home(&idp);
    with_groups["groups_claim"] = json!("groups");
    with_groups["policy"] = json!("approve");
    let p = call(
        &api,
        &doc,
        ("POST", PROVIDERS),
        PROVIDERS,
        Some(with_groups),
        201,
    )
    .await;
    assert_eq!(
        (p["groups_claim"].as_str(), p["source"].as_str()),
        (Some("groups"), Some("ui"))
    );
    let e = call(
        &api,
        &doc,
        ("POST", PROVIDERS),
        PROVIDERS,
        Some(home(&idp)),
        409,
    )
    .await;
    assert_eq!(e["error"]["code"], "PROVIDER_ID_TAKEN");
    let bad = json!({"id": "Not An Id!", "issuer": "", "client_id": ""});
    let e = call(&api, &doc, ("POST", PROVIDERS), PROVIDERS, Some(bad), 422).await;
    assert!(fields(&e).contains(&"id".to_owned()), "{e}");
    call(&api, &doc, ("GET", PROVIDERS), PROVIDERS, None, 200).await;
    let at = format!("{PROVIDERS}/home");
    call(&api, &doc, ("GET", PROVIDER), &at, None, 200).await;
    call(
        &api,
        &doc,
        ("GET", PROVIDER),
        &format!("{PROVIDERS}/nope"),
        None,
        404,
    )
    .await;
    let mut edit = home(&idp);
    edit.as_object_mut().unwrap().remove("client_secret");
    edit["label"] = json!("Home, renamed");
    let p = call(&api, &doc, ("PUT", PROVIDER), &at, Some(edit.clone()), 200).await;
    assert_eq!(
        (p["groups_claim"].clone(), p["has_previous"].as_bool()),
        (Value::Null, Some(true))
    );
    call(
        &api,
        &doc,
        ("PUT", PROVIDER),
        &format!("{PROVIDERS}/nope"),
        Some(edit),
        404,
    )
    .await;
    let enabled = ("PUT", "/api/admin/sso/providers/{id}/enabled");
    let p = call(
        &api,
        &doc,
        enabled,
        &format!("{at}/enabled"),
        Some(json!({"enabled": false})),
        200,
    )
    .await;
    assert_eq!(p["enabled"], false);
    call(
        &api,
        &doc,
        enabled,
        &format!("{at}/enabled"),
        Some(json!({"enabled": true})),
        200,
    )
    .await;
    let own = ("POST", "/api/admin/sso/providers/{id}/discovery");
    let d = call(&api, &doc, own, &format!("{at}/discovery"), None, 200).await;
    assert_eq!(d["ok"], true);

    // Links: one for the admin (so password sign-in may go off), one for bob; the list.
    let links_at = format!("{at}/links");
    let post_link = ("POST", LINKS);
    let mine = json!({"subject": ALICE.sub, "username": ADMIN});
    let link = call(&api, &doc, post_link, &links_at, Some(mine.clone()), 201).await;
    assert_eq!(
        (link["email"].clone(), link["last_login_at"].clone()),
        (Value::Null, Value::Null)
    );
    let e = call(&api, &doc, post_link, &links_at, Some(mine), 409).await;
    assert_eq!(e["error"]["code"], "ALREADY_LINKED");
    let bobs = json!({"subject": "bob-at-home", "username": "bob"});
    call(&api, &doc, post_link, &links_at, Some(bobs), 201).await;
    let l = call(&api, &doc, ("GET", LINKS), &links_at, None, 200).await;
    assert_eq!(l["links"].as_array().map(Vec::len), Some(2), "{l}");

    // The sign-in switches.
    let m = call(&api, &doc, ("GET", MODES), MODES, None, 200).await;
    assert_eq!(m["overridden"], false);
    let both_off = json!({"sso_enabled": false, "local_login_enabled": false});
    let e = call(&api, &doc, ("PUT", MODES), MODES, Some(both_off), 422).await;
    assert_eq!(fields(&e), ["local_login_enabled"]);
    let sso_only = json!({"sso_enabled": true, "local_login_enabled": false});
    let m = call(&api, &doc, ("PUT", MODES), MODES, Some(sso_only), 200).await;
    assert_eq!(m["local_login_in_force"], false, "{m}");

    // Revert (switches SSO login off again), then nothing is left to revert.
    let revert = ("POST", "/api/admin/sso/providers/{id}/revert");
    let p = call(&api, &doc, revert, &format!("{at}/revert"), None, 200).await;
    assert_eq!(p["label"], "Home IdP");
    let e = call(&api, &doc, revert, &format!("{at}/revert"), None, 409).await;
    assert_eq!(e["error"]["code"], "NOTHING_TO_REVERT");

    // Unlink the admin's own link (deleting the provider would unlink it too, and end the
    // caller's session with the others), then remove the provider and bob's link with it.
    let mine_at = format!("/api/admin/sso/identities/{}", link["id"]);
    call(&api, &doc, ("DELETE", IDENTITY), &mine_at, None, 200).await;
    call(&api, &doc, ("DELETE", IDENTITY), &mine_at, None, 404).await;
    let gone = call(&api, &doc, ("DELETE", PROVIDER), &at, None, 200).await;
    assert_eq!(gone["links_removed"], 1, "{gone}");
    call(&api, &doc, ("DELETE", PROVIDER), &at, None, 404).await;
    call(&api, &doc, own, &format!("{at}/discovery"), None, 404).await;
    call(&api, &doc, ("GET", LINKS), &links_at, None, 404).await;
}

const PROXY: &str = "/api/admin/proxy";
const PRESET: &str = "/api/admin/proxy/preset";
const PROXY_LINKS: &str = "/api/admin/proxy/links";

async fn proxy_answers_as_documented(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let doc = document(&app).await;
    let api = Api::admin(&app).await;
    add_user(&app, "dave", "user").await;

    let p = call(&api, &doc, ("GET", PROXY), PROXY, None, 200).await;
    assert_eq!(
        (p["preset"].clone(), p["policy"].as_str()),
        (Value::Null, Some("link"))
    );
    // Every preset, by the name the document lists; `previous_preset` then names one too.
    for preset in ["authelia", "authentik", "oauth2-proxy"] {
        let body = Some(json!({ "preset": preset }));
        let p = call(&api, &doc, ("PUT", PRESET), PRESET, body, 200).await;
        assert_eq!(p["preset"], preset, "{p}");
    }
    let p = call(
        &api,
        &doc,
        ("PUT", PRESET),
        PRESET,
        Some(json!({"preset": null})),
        200,
    )
    .await;
    assert_eq!(p["previous_preset"], "oauth2-proxy", "{p}");
    let e = call(
        &api,
        &doc,
        ("PUT", PRESET),
        PRESET,
        Some(json!({"preset": "bogus"})),
        422,
    )
    .await;
    assert_eq!(fields(&e), ["preset"]);
    // One step of undo: the preset is back and nothing is left to revert (`null`).
    let revert = ("POST", "/api/admin/proxy/preset/revert");
    let p = call(&api, &doc, revert, revert.1, None, 200).await;
    assert_eq!(
        (p["preset"].as_str(), p["previous_preset"].clone()),
        (Some("oauth2-proxy"), Value::Null)
    );
    let e = call(&api, &doc, revert, revert.1, None, 409).await;
    assert_eq!(e["error"]["code"], "NOTHING_TO_REVERT");

    let body = json!({"proxy_user": "dave-at-proxy", "username": "dave"});
    let post = ("POST", PROXY_LINKS);
    let link = call(&api, &doc, post, PROXY_LINKS, Some(body.clone()), 201).await;
    assert_eq!(link["provider"], "proxy");
    let e = call(&api, &doc, post, PROXY_LINKS, Some(body), 409).await;
    assert_eq!(e["error"]["code"], "ALREADY_LINKED");
    let bad = json!({"proxy_user": "", "username": "nobody"});
    let e = call(&api, &doc, post, PROXY_LINKS, Some(bad), 422).await;
    assert_eq!(fields(&e), ["proxy_user", "username"]);
    let l = call(&api, &doc, ("GET", PROXY_LINKS), PROXY_LINKS, None, 200).await;
    assert_eq!(l["links"].as_array().map(Vec::len), Some(1), "{l}");
}
