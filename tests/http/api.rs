//! `/api/auth/*`.

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, user};

both_databases!(login_me_logout, bad_requests_get_json_errors);

async fn login_me_logout(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({"username": "ADMIN", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let login_body = r.text().await.unwrap();
    let me = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let me_body = me.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&me_body).unwrap();
    let id = user(&app, ADMIN).await.id;
    assert_eq!(v["id"], id);
    assert_eq!(v["username"], "admin");
    assert_eq!(v["email"], "admin@example.com");
    assert_eq!(v["display_name"], serde_json::Value::Null);
    assert_eq!(v["role"], "admin");
    assert_eq!(v["status"], "active");
    assert_eq!(v["auth_method"], "session");
    for body in [&login_body, &me_body] {
        assert!(
            !body.contains("argon2") && !body.contains("password"),
            "{body}"
        );
    }
    let (_, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    assert!(token.len() >= 32);
    let token = v["csrf_token"].as_str().unwrap();
    let r = c
        .post(app.url("/api/auth/logout"))
        .header("X-CSRF-Token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.post(app.url("/api/auth/logout")).send().await.unwrap();
    assert_eq!(
        r.status(),
        401,
        "logging out twice is an authentication error, not a crash"
    );
}

async fn bad_requests_get_json_errors(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let url = app.url("/api/auth/login");
    let r = c
        .post(&url)
        .json(&serde_json::json!({"username": "", "password": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(v["error"]["fields"][0]["field"], "username");
    assert_eq!(v["error"]["fields"][1]["field"], "password");

    let r = c
        .post(&url)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "BAD_REQUEST");

    let r = c.post(&url).body("username=admin").send().await.unwrap();
    assert_eq!(r.status(), 415);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("content-type")
    );
}

both_databases!(changing_your_password_through_the_api);

async fn changing_your_password_through_the_api(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let other = app.admin_client().await;
    let url = app.url("/api/me/password");
    let r = c
        .post(&url)
        .header("X-CSRF-Token", &token)
        .json(&serde_json::json!({"current_password": "wrong", "new_password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: serde_json::Value = r.json().await.unwrap();
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"current_password") && fields.contains(&"new_password"),
        "{v}"
    );
    let r = c.post(&url).json(&serde_json::json!({"current_password": ADMIN_PASSWORD, "new_password": "api new password"})).send().await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "cookie-authenticated: needs the CSRF header"
    );
    let r = c.post(&url).header("X-CSRF-Token", &token).json(&serde_json::json!({"current_password": ADMIN_PASSWORD, "new_password": "api new password"})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "this session ended"
    );
    assert_eq!(
        other
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "and every other one"
    );
    let _ = api_login(&app, ADMIN, "api new password").await;
}
