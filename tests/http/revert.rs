//! "Revert to previous" undoes the last *real* change (issue 9, point 8): a save that changes
//! nothing keeps the snapshot, for an OpenID provider's connection settings and for the
//! forward-auth header preset alike.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::redirect::Policy;

use crate::support::{Db, TestApp, sql};

const PROXY_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

both_databases!(
    saving_a_provider_unchanged_keeps_what_revert_restores,
    choosing_the_same_preset_keeps_what_revert_restores,
);

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on {}", r.status()))
        .to_owned()
}

async fn page(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    c.get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn saving_a_provider_unchanged_keeps_what_revert_restores(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let save = |path: &'static str, label: &'static str, secret: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let token = app.csrf(&admin, path).await;
            let r = admin
                .post(app.url(path))
                .form(&[
                    ("csrf_token", token.as_str()),
                    ("id", "home"),
                    ("label", label),
                    ("issuer", "https://idp.example.com"),
                    ("client_id", "hallpass"),
                    ("client_secret", secret),
                    ("scopes", "openid profile email"),
                    ("policy", "link"),
                    ("action", "save"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        }
    };
    let edit = "/admin/sso/providers/home";
    save("/admin/sso/new", "Good", "good-secret").await;
    save(edit, "Broken", "wrong-secret").await;
    // Saved twice more without a change: the secret typed again, then left empty (kept).
    let snapshot = || {
        sql(
            &app,
            "UPDATE oidc_providers SET id = id WHERE previous LIKE '%\"label\":\"Good\"%'",
        )
    };
    assert_eq!(
        snapshot().await,
        1,
        "the first change keeps the good settings"
    );
    save(edit, "Broken", "wrong-secret").await;
    save(edit, "Broken", "").await;
    assert_eq!(
        snapshot().await,
        1,
        "an unchanged save replaced the snapshot"
    );
    // Revert brings back the last settings that differed.
    let token = app.csrf(&admin, "/admin/sso/providers/home/revert").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/revert"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/admin/sso?notice=reverted");
    let html = page(&app, &admin, edit).await;
    assert!(html.contains("value=\"Good\""), "{html}");
    let secret = app
        .state
        .db
        .run(|c| hallpass::db::oidc_providers::get(c, "home"))
        .await
        .unwrap()
        .unwrap()
        .client_secret
        .unwrap();
    assert_eq!(
        hallpass::service::sso::open(&app.state.secret, &secret).as_deref(),
        Some("good-secret")
    );
    // A real change after that is again one step of undo.
    save(edit, "Good", "good-secret").await;
    assert!(!page(&app, &admin, edit).await.contains("id=\"revert\""));
}

async fn choosing_the_same_preset_keeps_what_revert_restores(db: Db) {
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
    let admin = app.admin_client().await;
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let admin = admin.clone();
        let app = &app;
        async move {
            let token = app.csrf(&admin, "/admin/proxy").await;
            let mut form = vec![("csrf_token", token)];
            form.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
            admin
                .post(app.url("/admin/proxy"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let proxied_user = |header: &'static str| {
        let app = &app;
        async move {
            let c = reqwest::Client::builder()
                .local_address(PROXY_IP)
                .redirect(Policy::none())
                .build()
                .unwrap();
            c.get(app.url("/api/auth/me"))
                .header(header, "dave")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert!(
        !page(&app, &admin, "/admin/proxy")
            .await
            .contains("revert-preset")
    );
    for preset in ["authentik", "oauth2-proxy", "oauth2-proxy"] {
        let r = post(vec![("preset", preset)]).await;
        assert_eq!(location(&r), "/admin/proxy?saved=1");
    }
    let html = page(&app, &admin, "/admin/proxy").await;
    assert!(
        html.contains("id=\"revert-preset\"") && html.contains("replaced Authentik outpost"),
        "the unchanged save must keep the snapshot: {html}"
    );
    // Revert: the authentik header names are in force again, in this process at once.
    let r = post(vec![("action", "revert")]).await;
    assert_eq!(location(&r), "/admin/proxy?reverted=1");
    let html = page(&app, &admin, "/admin/proxy?reverted=1").await;
    assert!(
        html.contains("id=\"preset-authentik\" checked")
            && html.contains("previous header preset is back")
            && !html.contains("id=\"revert-preset\""),
        "{html}"
    );
    assert_eq!(proxied_user("X-authentik-username").await, 200);
    assert_eq!(proxied_user("X-Forwarded-Preferred-Username").await, 401);
    // One step of undo only.
    let r = post(vec![("action", "revert")]).await;
    assert_eq!(r.status(), 409);
}
