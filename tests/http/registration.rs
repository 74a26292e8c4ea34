//! Self-registration (`/register`) and the settings that control it (`/admin/settings`,
//! `/api/admin/settings`).

use hallpass::domain::{Role, Status};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, csrf_in, user};

both_databases!(
    registration_is_off_by_default,
    registration_creates_a_pending_account,
    auto_approved_accounts_are_signed_in_and_land_home,
    duplicate_usernames_and_emails_are_refused_next_to_the_field,
    settings_toggles_persist_and_are_audited,
    settings_and_register_forms_need_the_csrf_token,
);

/// Whether the checkbox with this id is ticked.
fn checked(html: &str, id: &str) -> bool {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag = &html[at..];
    tag[..tag.find('>').unwrap()].contains(" checked")
}

async fn settings(app: &TestApp) -> hallpass::db::settings::Settings {
    app.state.db.run(hallpass::db::settings::get).await.unwrap()
}

/// Saves the settings form as the admin.
async fn save_settings(app: &TestApp, admin: &reqwest::Client, register: bool, auto: bool) {
    let token = app.csrf(admin, "/admin/settings").await;
    let mut form = vec![("csrf_token", token.as_str())];
    if register {
        form.push(("registration_enabled", "on"));
    }
    if auto {
        form.push(("auto_approve_registrations", "on"));
    }
    let r = admin
        .post(app.url("/admin/settings"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/settings?saved=1");
}

async fn register(
    app: &TestApp,
    c: &reqwest::Client,
    username: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let token = app.csrf(c, "/register").await;
    c.post(app.url("/register"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("email", email),
            ("password", password),
            ("password_confirm", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn registration_is_off_by_default(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    assert_eq!(
        (
            settings(&app).await.registration_enabled,
            settings(&app).await.auto_approve_registrations
        ),
        (false, false)
    );
    let c = app.client();
    let r = c.get(app.url("/register")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page not found"));
    let login = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !login.contains("href=\"/register\""),
        "no link while closed"
    );
    let token = csrf_in(&login).unwrap();
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "eve"),
            ("password", "eve's passphrase"),
            ("password_confirm", "eve's passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the form is refused too");
    let r = c
        .post(app.url("/register"))
        .form(&[("csrf_token", token.as_str()), ("username", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "invalid input: still closed, not 422");
    let users = app.state.db.run(hallpass::db::users::count).await.unwrap();
    assert_eq!(users, 1);
}

async fn registration_creates_a_pending_account(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    save_settings(&app, &admin, true, false).await;

    let c = app.client();
    let login = c
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("href=\"/register\""),
        "the sign-in page links to it"
    );
    let form = c.get(app.url("/register")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    for attr in [
        "name=\"username\" type=\"text\" value=\"\" autocomplete=\"username\"",
        "name=\"email\" type=\"email\" value=\"\" autocomplete=\"email\"",
        "name=\"password\" type=\"password\" autocomplete=\"new-password\"",
        "name=\"password_confirm\" type=\"password\" autocomplete=\"new-password\"",
    ] {
        assert!(form.contains(attr), "{attr}");
    }
    assert!(form.contains("id=\"approval-hint\""));

    let r = register(
        &app,
        &c,
        "Newbie",
        "newbie@example.com",
        "newbie passphrase",
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let stored = user(&app, "newbie").await;
    assert_eq!(stored.username, "Newbie");
    assert_eq!(stored.email.as_deref(), Some("newbie@example.com"));
    assert_eq!(stored.role, Role::User);
    assert_eq!(stored.status, Status::Pending);
    // Signed in, and the status gate says where the account stands.
    let home = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 403);
    let home = home.text().await.unwrap();
    assert!(home.contains("id=\"account-status\"") && home.contains("Awaiting approval"));

    // Signing in again later shows the same.
    let again = app.client();
    let r = app.login(&again, "newbie", "newbie passphrase").await;
    assert_eq!(r.status(), 303);
    let home = again
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("id=\"account-status\"") && home.contains("Awaiting approval"));

    let (api, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let v: serde_json::Value = api
        .get(app.url("/api/admin/audit?action=user.register"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["events"][0]["target"], "Newbie");
    assert_eq!(v["events"][0]["actor_id"], stored.id);
    assert_eq!(v["events"][0]["detail"], "status=pending");
    assert!(!v.to_string().contains("newbie passphrase"));
}

async fn auto_approved_accounts_are_signed_in_and_land_home(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (api, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = api
        .put(app.url("/api/admin/settings"))
        .header("X-CSRF-Token", &token)
        .json(
            &serde_json::json!({"registration_enabled": true, "auto_approve_registrations": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let c = app.client();
    let form = c
        .get(app.url("/register"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!form.contains("id=\"approval-hint\""));
    let r = register(&app, &c, "dave", "", "dave's passphrase").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let stored = user(&app, "dave").await;
    assert_eq!(stored.status, Status::Active);
    assert_eq!(stored.role, Role::User);
    assert_eq!(stored.email, None);
    let home = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(home.contains("id=\"me-username\">dave<"), "{home}");
    assert!(home.contains("id=\"me-role\">user<"));
    // A signed-in visitor has nothing to register.
    let r = c.get(app.url("/register")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let token = app.csrf(&c, "/").await;
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "dave2"),
            ("password", "dave's passphrase"),
            ("password_confirm", "dave's passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let users = app.state.db.run(hallpass::db::users::count).await.unwrap();
    assert_eq!(users, 2, "no second account from a signed-in session");
}

async fn duplicate_usernames_and_emails_are_refused_next_to_the_field(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    save_settings(&app, &admin, true, false).await;
    let c = app.client();
    let r = register(&app, &c, "ADMIN", "Admin@Example.com", "dup passphrase 1").await;
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"username-error\">This username is already taken.<"),
        "{page}"
    );
    assert!(page.contains("id=\"email-error\">Another account already uses this email.<"));
    assert!(page.contains("value=\"ADMIN\""), "username kept");
    assert!(page.contains("value=\"Admin@Example.com\""), "email kept");
    assert!(!page.contains("dup passphrase 1"), "password never echoed");

    let token = csrf_in(&page).unwrap();
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "x"),
            ("email", "nope"),
            ("password", "short"),
            ("password_confirm", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"username-error\""));
    assert!(page.contains("id=\"email-error\""));
    assert!(page.contains("id=\"password-error\""));
    let users = app.state.db.run(hallpass::db::users::count).await.unwrap();
    assert_eq!(users, 1);
}

async fn settings_toggles_persist_and_are_audited(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let page = admin
        .get(app.url("/admin/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Allow self-registration"));
    assert!(page.contains("Approve new accounts automatically"));
    assert!(!checked(&page, "registration_enabled"));
    assert!(!checked(&page, "auto_approve_registrations"));

    save_settings(&app, &admin, true, true).await;
    let page = admin
        .get(app.url("/admin/settings?saved=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Settings saved."));
    assert!(checked(&page, "registration_enabled"));
    assert!(checked(&page, "auto_approve_registrations"));
    let s = settings(&app).await;
    assert!(s.registration_enabled && s.auto_approve_registrations);

    save_settings(&app, &admin, true, false).await;
    let s = settings(&app).await;
    assert!(s.registration_enabled && !s.auto_approve_registrations);

    // The API reads and writes the same settings.
    let (api, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let v: serde_json::Value = api
        .get(app.url("/api/admin/settings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"registration_enabled": true, "auto_approve_registrations": false})
    );
    let r = api
        .put(app.url("/api/admin/settings"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"registration_enabled": false, "auto_approve_registrations": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["registration_enabled"], false);
    assert!(!settings(&app).await.registration_enabled);
    let r = api
        .put(app.url("/api/admin/settings"))
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"registration_enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "both fields are required");

    let v: serde_json::Value = api
        .get(app.url("/api/admin/audit?action=settings.update"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let details: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "registration on -> off",
            "auto_approve on -> off",
            "registration off -> on, auto_approve off -> on",
        ]
    );
    assert_eq!(v["events"][0]["actor"], ADMIN);
    assert_eq!(v["events"][0]["target"], "instance");
}

async fn settings_and_register_forms_need_the_csrf_token(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let r = admin
        .post(app.url("/admin/settings"))
        .form(&[("registration_enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin
        .post(app.url("/admin/settings"))
        .form(&[("csrf_token", "forged"), ("registration_enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!settings(&app).await.registration_enabled);

    save_settings(&app, &admin, true, true).await;
    let c = app.client();
    let _ = app.csrf(&c, "/register").await;
    let r = c
        .post(app.url("/register"))
        .form(&[
            ("username", "mallory"),
            ("password", "mallory passphrase"),
            ("password_confirm", "mallory passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let users = app.state.db.run(hallpass::db::users::count).await.unwrap();
    assert_eq!(users, 1);

    let (api, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = api
        .put(app.url("/api/admin/settings"))
        .json(&serde_json::json!({"registration_enabled": false, "auto_approve_registrations": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "cookie-authenticated JSON needs X-CSRF-Token"
    );
    assert!(settings(&app).await.registration_enabled);
}
