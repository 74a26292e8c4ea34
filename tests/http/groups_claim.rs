//! Groups filled by a sign-in source (issue 11, point 5, "optional but expected"): an OpenID
//! provider's groups claim (`groups_claim`, against the real provider in `tests/oidc-idp`)
//! and a forward-auth proxy's groups header. Names map to existing groups only, in any case;
//! the source's own memberships are refreshed at each sign-in, an administrator's never.

use hallpass::domain::sso::{Policy, Provider, Source};
use secrecy::SecretString;
use serde_json::json;

use crate::groups::{count, rules_version};
use crate::support::idp::{ALICE, BOB, DefaultUser, Idp};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, audit_events, user};

both_databases!(
    an_oidc_groups_claim_fills_existing_groups_at_each_sign_in,
    a_provider_without_a_groups_claim_leaves_groups_alone,
    the_provider_form_sets_the_groups_claim_and_clearing_it_ends_its_memberships,
    a_proxy_groups_header_fills_existing_groups_at_each_request,
    wiping_sso_ends_the_memberships_of_stored_providers,
);

const CLIENT_ID: &str = "hallpass";
const CLIENT_SECRET: &str = "idp-client-secret-0123456789";

/// An app with the admin and one environment provider `idp` (auto policy, scopes with
/// `groups`) whose groups claim is `groups_claim`.
async fn start(db: Db, groups_claim: Option<&str>) -> Option<(TestApp, Idp)> {
    let idp = Idp::start(&Idp::default_users()).await;
    let issuer = idp.issuer.clone();
    let groups_claim = groups_claim.map(str::to_owned);
    let app = TestApp::start(
        db,
        move |c| {
            c.sso.providers.push(Provider {
                id: "idp".into(),
                label: "IdP".into(),
                issuer,
                client_id: CLIENT_ID.into(),
                client_secret: Some(SecretString::from(CLIENT_SECRET.to_owned())),
                scopes: vec![
                    "openid".into(),
                    "profile".into(),
                    "email".into(),
                    "groups".into(),
                ],
                subject_claim: "sub".into(),
                username_claim: "preferred_username".into(),
                email_claim: "email".into(),
                groups_claim,
                policy: Policy::Auto,
                enabled: true,
                source: Source::Env,
            });
        },
        true,
    )
    .await?;
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/idp/callback")],
    )
    .await;
    Some((app, idp))
}

/// Signs in as `who` through provider `id` in a fresh browser; asserts it worked.
async fn sso_sign_in(app: &TestApp, idp: &Idp, id: &str, who: DefaultUser) {
    let c = app.client();
    let r = c
        .get(app.url(&format!("/api/auth/oidc/{id}/login?next=/account")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_idp = r.headers()["location"].to_str().unwrap().to_owned();
    let callback = idp.authorize(&to_idp, who.username, who.password).await;
    let r = c.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "the callback signs {} in", who.username);
    assert_eq!(r.headers()["location"], "/account");
}

/// Account `user_id`'s memberships as (group name, source), by name.
async fn memberships(app: &TestApp, user_id: i64) -> Vec<(String, String)> {
    let db = app.state.db.clone();
    let of = db
        .run(move |c| hallpass::db::groups::of_user(c, user_id))
        .await
        .unwrap();
    let sources = db
        .run(move |c| hallpass::db::groups::memberships_of(c, user_id))
        .await
        .unwrap();
    of.into_iter()
        .map(|(id, name)| {
            let source = sources.iter().find(|(g, _)| *g == id).unwrap().1.clone();
            (name, source)
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Creates a group through the API; returns its id.
async fn group(app: &TestApp, name: &str) -> i64 {
    let (c, t) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
    let r = c
        .post(app.url("/api/admin/groups"))
        .header("X-CSRF-Token", &t)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Sends `method path` with a JSON body as the admin; returns the status.
async fn admin_api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: serde_json::Value,
) -> u16 {
    let (c, t) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
    c.request(method, app.url(path))
        .header("X-CSRF-Token", &t)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn an_oidc_groups_claim_fills_existing_groups_at_each_sign_in(db: Db) {
    let Some((app, idp)) = start(db, Some("groups")).await else {
        return;
    };
    // Alice's claim lists "admins" and "family"; only Family exists here.
    let family = group(&app, "Family").await;
    let ops = group(&app, "Ops").await;
    let v0 = rules_version(&app).await;
    sso_sign_in(&app, &idp, "idp", ALICE).await;
    let alice = user(&app, "alice").await.id;
    assert_eq!(memberships(&app, alice).await, pairs(&[("Family", "idp")]));
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM groups").await,
        2,
        "a claim never creates a group"
    );
    let v1 = rules_version(&app).await;
    assert!(v1 > v0, "the claim's membership moves rules_version");
    let added = audit_events(&app, "group.member_add").await;
    assert_eq!(added.len(), 1);
    assert_eq!(
        (
            added[0].actor.as_str(),
            added[0].target.as_deref(),
            added[0].detail.as_deref()
        ),
        ("idp", Some("alice"), Some("Family (groups claim of idp)"))
    );

    // The same sign-in again changes nothing and writes no membership.
    sso_sign_in(&app, &idp, "idp", ALICE).await;
    assert_eq!(rules_version(&app).await, v1);
    assert_eq!(audit_events(&app, "group.member_add").await.len(), 1);

    // An administrator's membership, and a group named as the claim says in another case.
    let status = admin_api(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/groups/{ops}/members"),
        json!({ "user_id": alice }),
    )
    .await;
    assert_eq!(status, 201);
    group(&app, "ADMINS").await;
    // Family is renamed: the claim no longer names it, so the membership it gave ends.
    let status = admin_api(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/admin/groups/{family}"),
        json!({ "name": "Kin" }),
    )
    .await;
    assert_eq!(status, 200);
    sso_sign_in(&app, &idp, "idp", ALICE).await;
    assert_eq!(
        memberships(&app, alice).await,
        pairs(&[("ADMINS", "idp"), ("Ops", "admin")]),
        "joined ADMINS, left Kin, kept the admin's Ops"
    );
    let removed = audit_events(&app, "group.member_remove").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(
        (removed[0].actor.as_str(), removed[0].detail.as_deref()),
        ("idp", Some("Kin (groups claim of idp)"))
    );

    // An administrator adding a claimed membership takes it over: a sign-in whose claim no
    // longer names the group keeps it.
    let (c, t) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let list: serde_json::Value = c
        .get(app.url("/api/admin/groups"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admins_id = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "ADMINS")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = c
        .post(app.url(&format!("/api/admin/groups/{admins_id}/members")))
        .header("X-CSRF-Token", &t)
        .json(&json!({ "username": "alice" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        audit_events(&app, "group.member_add").await[0]
            .detail
            .as_deref(),
        Some("ADMINS (kept by an admin; was from idp)")
    );
    admin_api(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/admin/groups/{admins_id}"),
        json!({ "name": "Root" }),
    )
    .await;
    sso_sign_in(&app, &idp, "idp", ALICE).await;
    assert_eq!(
        memberships(&app, alice).await,
        pairs(&[("Ops", "admin"), ("Root", "admin")])
    );
    // Bob ("family") matches no group now (Family is Kin): nothing.
    sso_sign_in(&app, &idp, "idp", BOB).await;
    assert!(
        memberships(&app, user(&app, "bob").await.id)
            .await
            .is_empty()
    );
}

async fn a_provider_without_a_groups_claim_leaves_groups_alone(db: Db) {
    let Some((app, idp)) = start(db, None).await else {
        return;
    };
    group(&app, "family").await;
    let v = rules_version(&app).await;
    sso_sign_in(&app, &idp, "idp", BOB).await;
    let bob = user(&app, "bob").await.id;
    assert!(
        memberships(&app, bob).await.is_empty(),
        "groups are opt-in per provider"
    );
    assert_eq!(rules_version(&app).await, v);
}

async fn the_provider_form_sets_the_groups_claim_and_clearing_it_ends_its_memberships(db: Db) {
    let idp = Idp::start(&Idp::default_users()).await;
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    idp.add_client(
        CLIENT_ID,
        Some(CLIENT_SECRET),
        &[app.url("/api/auth/oidc/home/callback")],
    )
    .await;
    let admin = app.admin_client().await;
    let token = app.csrf(&admin, "/admin/sso/new").await;
    let form = |path: &str, secret: &str, groups_claim: &str| {
        admin
            .post(app.url(path))
            .form(&[
                ("csrf_token", token.as_str()),
                ("id", "home"),
                ("label", "Home IdP"),
                ("issuer", idp.issuer.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", secret),
                ("scopes", "openid profile email groups"),
                ("groups_claim", groups_claim),
                ("policy", "auto"),
                ("action", "save"),
            ])
            .send()
    };
    // A claim name with a space is refused by its field, the input kept.
    let r = form("/admin/sso/new", CLIENT_SECRET, "my groups")
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"id="groups_claim-error""#), "{html}");
    assert!(html.contains(r#"value="my groups""#));
    let r = form("/admin/sso/new", CLIENT_SECRET, "groups")
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = admin
        .get(app.url("/admin/sso/providers/home"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"name="groups_claim" value="groups""#),
        "{page}"
    );
    let modes_token = app.csrf(&admin, "/admin/sso").await;
    let r = admin
        .post(app.url("/admin/sso/modes"))
        .form(&[
            ("csrf_token", modes_token.as_str()),
            ("sso_enabled", "on"),
            ("local_login_enabled", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    group(&app, "Family").await;
    sso_sign_in(&app, &idp, "home", BOB).await;
    let bob = user(&app, "bob").await.id;
    assert_eq!(memberships(&app, bob).await, pairs(&[("Family", "home")]));
    let ops = group(&app, "Ops").await;
    admin_api(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/groups/{ops}/members"),
        json!({ "user_id": bob }),
    )
    .await;

    // Clearing the claim: nothing will refresh what it gave, so that ends now; the
    // administrator's membership stays.
    let v = rules_version(&app).await;
    let r = form("/admin/sso/providers/home", "", "").await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(memberships(&app, bob).await, pairs(&[("Ops", "admin")]));
    assert!(rules_version(&app).await > v);
    sso_sign_in(&app, &idp, "home", BOB).await;
    assert_eq!(memberships(&app, bob).await, pairs(&[("Ops", "admin")]));

    // Back on, then the provider is removed (Bob got a password first, so he keeps a way
    // in): its memberships go with it.
    let r = form("/admin/sso/providers/home", "", "groups")
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    sso_sign_in(&app, &idp, "home", BOB).await;
    assert_eq!(
        memberships(&app, bob).await,
        pairs(&[("Family", "home"), ("Ops", "admin")])
    );
    let status = admin_api(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/users/{bob}/password"),
        json!({ "password": "bob's own password" }),
    )
    .await;
    assert_eq!(status, 200);
    let delete_token = app.csrf(&admin, "/admin/sso/providers/home/delete").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/delete"))
        .form(&[("csrf_token", delete_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(memberships(&app, bob).await, pairs(&[("Ops", "admin")]));
    let deleted = audit_events(&app, "sso.provider.delete").await;
    assert!(
        deleted[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("1 group memberships from its groups claim"),
        "{:?}",
        deleted[0].detail
    );
}

/// A request from the trusted proxy (127.0.0.2) naming the caller in its headers.
async fn as_proxied(app: &TestApp, headers: &[(&str, &str)]) -> u16 {
    let c = crate::support::client_from("127.0.0.2");
    let mut r = c.get(app.url("/api/auth/me"));
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap().status().as_u16()
}

async fn a_proxy_groups_header_fills_existing_groups_at_each_request(db: Db) {
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
    group(&app, "Family").await;
    let media = group(&app, "Media").await;
    let v0 = rules_version(&app).await;
    let bob = [("Remote-User", "bob"), ("Remote-Groups", "FAMILY, ghosts")];
    assert_eq!(as_proxied(&app, &bob).await, 200);
    let id = user(&app, "bob").await.id;
    assert_eq!(memberships(&app, id).await, pairs(&[("Family", "proxy")]));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM groups").await, 2);
    let v1 = rules_version(&app).await;
    assert!(v1 > v0);
    // The next requests with the same header write nothing.
    for _ in 0..3 {
        assert_eq!(as_proxied(&app, &bob).await, 200);
    }
    assert_eq!(rules_version(&app).await, v1);
    assert_eq!(audit_events(&app, "group.member_add").await.len(), 1);

    // An administrator adds Bob to Media; then the header names Media only.
    admin_api(
        &app,
        reqwest::Method::POST,
        &format!("/api/admin/groups/{media}/members"),
        json!({ "user_id": id }),
    )
    .await;
    let media_only = [("Remote-User", "bob"), ("Remote-Groups", "media")];
    assert_eq!(as_proxied(&app, &media_only).await, 200);
    assert_eq!(
        memberships(&app, id).await,
        pairs(&[("Media", "admin")]),
        "left Family, Media stays the administrator's"
    );
    let removed = audit_events(&app, "group.member_remove").await;
    assert_eq!(
        (removed[0].actor.as_str(), removed[0].detail.as_deref()),
        ("proxy", Some("Family (groups claim of proxy)"))
    );
    // No groups header at all: the administrator's membership is untouched.
    assert_eq!(as_proxied(&app, &[("Remote-User", "bob")]).await, 200);
    assert_eq!(memberships(&app, id).await, pairs(&[("Media", "admin")]));
}

async fn wiping_sso_ends_the_memberships_of_stored_providers(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    app.state
        .db
        .run(|c| {
            hallpass::db::oidc_providers::insert(
                c,
                &hallpass::db::oidc_providers::StoredProvider {
                    id: "home".into(),
                    label: "Home".into(),
                    issuer: "https://id.example.com".into(),
                    client_id: "hallpass".into(),
                    client_secret: None,
                    scopes: "openid groups".into(),
                    subject_claim: "sub".into(),
                    username_claim: "preferred_username".into(),
                    email_claim: "email".into(),
                    policy: "link".into(),
                    groups_claim: Some("groups".into()),
                    enabled: true,
                    previous: None,
                },
            )
        })
        .await
        .unwrap();
    let bob = crate::groups::account(&app, "bob", "user").await;
    for (name, source) in [("Family", "home"), ("Media", "proxy"), ("Ops", "admin")] {
        let id = group(&app, name).await;
        crate::support::sql(
            &app,
            format!(
                "INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ({id}, {bob}, '{source}', 0)"
            ),
        )
        .await;
    }
    let v = rules_version(&app).await;
    hallpass::service::recovery::wipe_sso(&app.state.db, hallpass::service::Actor::system("cli"))
        .await
        .unwrap();
    assert_eq!(
        memberships(&app, bob).await,
        pairs(&[("Media", "proxy"), ("Ops", "admin")])
    );
    assert!(rules_version(&app).await > v);
    let wiped = audit_events(&app, "sso.wipe").await;
    assert!(
        wiped[0]
            .detail
            .as_deref()
            .unwrap()
            .ends_with("1 group memberships from their groups claims removed"),
        "{:?}",
        wiped[0].detail
    );
}
