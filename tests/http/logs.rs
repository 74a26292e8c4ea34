//! Logs (issue 16, point 2): `log.format = "json"` writes one JSON object a line, request lines
//! carry the request id, route, status, latency and client address, and no secret the test
//! used (passwords, an API key, a TOTP secret and its codes, recovery codes, the session
//! cookie, CSRF tokens) appears in the log of the whole run, at `debug`.

use serde_json::{Value, json};

use crate::cli::{Running, database_url, free_port, hallpass};
use crate::support::Db;
use crate::two_factor::{code_at, now};

both_databases!(json_logs_carry_the_request_and_never_a_secret);

const ADMIN_PASSWORD: &str = "Logged-never-0-admin";
const NEW_PASSWORD: &str = "Logged-never-1-changed";
const WRONG_PASSWORD: &str = "Logged-never-2-wrong";

async fn json_logs_carry_the_request_and_never_a_secret(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database_url(db, dir.path()) else {
        return;
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_DATABASE__URL", &url)
        .env("HALLPASS_LOG__FORMAT", "json")
        .env("HALLPASS_LOG__REQUESTS", "true")
        .env("RUST_LOG", "debug")
        .env("HALLPASS_ADMIN_USERNAME", "boss")
        .env("HALLPASS_ADMIN_EMAIL", "boss@example.com")
        .env("HALLPASS_ADMIN_PASSWORD", ADMIN_PASSWORD);
    let mut server = Running::start(cmd);
    server.wait_for("listening");
    let mut secrets: Vec<String> = vec![
        ADMIN_PASSWORD.into(),
        NEW_PASSWORD.into(),
        WRONG_PASSWORD.into(),
    ];

    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |password: &'static str| {
        c.post(format!("{base}/api/auth/login"))
            .json(&json!({"username": "boss", "password": password}))
            .send()
    };
    assert_eq!(login(WRONG_PASSWORD).await.unwrap().status(), 401);
    let r = login(ADMIN_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200);
    secrets.extend(r.cookies().map(|c| c.value().to_owned()));
    let body: Value = r.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    secrets.push(csrf.clone());

    // An API key, created and used.
    let created: Value = c
        .post(format!("{base}/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    let r = reqwest::Client::new()
        .get(format!("{base}/api/auth/me"))
        .bearer_auth(&key)
        .header("X-Request-Id", "proxy-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A second factor: enrolled on the account pages, then a two-step sign-in.
    let page = text(&c, &format!("{base}/account/two-factor")).await;
    let token = crate::support::csrf_in(&page).unwrap();
    let page = c
        .post(format!("{base}/account/two-factor/start"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let secret = element_text(&page, "secret");
    secrets.push(secret.clone());
    secrets.push(secret.replace(' ', ""));
    let token = crate::support::csrf_in(&page).unwrap();
    let first_code = code_at(&secret, now());
    let done = c
        .post(format!("{base}/account/two-factor/confirm"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("code", first_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    let codes: Vec<String> = done
        .split("<code>")
        .skip(1)
        .map(|c| c[..c.find("</code>").unwrap()].to_owned())
        .collect();
    assert!(codes.len() >= 10, "{done}");
    secrets.extend(codes);

    // Password change, then the two-step JSON sign-in with the new password.
    let r = c
        .post(format!("{base}/api/me/password"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"current_password": ADMIN_PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let two = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = two
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "boss", "password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "second step asked");
    let code = code_at(&secret, now() + 30);
    let r = two
        .post(format!("{base}/api/auth/login/second-factor"))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    secrets.extend(r.cookies().map(|c| c.value().to_owned()));
    secrets.push(first_code);
    secrets.push(code);

    let (status, log) = server.terminate();
    assert_eq!(status, Some(0), "{log}");

    // One JSON object a line.
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 20, "{log}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    // The request line: id (the proxy's), route pattern, status, latency, client.
    let line = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "proxy-req-42" && l["status"].is_number())
        .unwrap_or_else(|| panic!("no request line for proxy-req-42: {log}"));
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert!(line["latency"].is_string(), "{line}");
    assert_eq!(line["span"]["route"], "/api/auth/me", "{line}");
    assert_eq!(line["span"]["client"], "127.0.0.1", "{line}");
    let routed = lines
        .iter()
        .find(|l| l["span"]["path"] == "/api/me/api-keys" && l["status"] == 201)
        .unwrap_or_else(|| panic!("no line for the key's creation: {log}"));
    let id = routed["span"]["request_id"].as_str().unwrap();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "a random id when the client sent none: {routed}"
    );

    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!log.contains(secret.as_str()), "{secret:?} is in the log");
    }
}

async fn text(c: &reqwest::Client, url: &str) -> String {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// The text of the element with this id.
fn element_text(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}: {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find('<').unwrap();
    rest[start..end].trim().to_owned()
}
