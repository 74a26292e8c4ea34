//! Which certificate authorities the OpenID client trusts: the host's store (and
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`) as well as the public roots built into the binary. A
//! homelab's provider often sits behind a private CA (step-ca, Caddy's `tls internal`, a CA
//! of one's own); adding that CA to the host (or the container) must be enough.
//!
//! Real parts: a CA and a certificate for 127.0.0.1 made by the `openssl` command, the test
//! provider (`tests/oidc-idp`) serving https with it, and real `hallpass serve` processes,
//! since `SSL_CERT_FILE` is read from the process's environment.

use reqwest::Client;
use serde_json::{Value, json};

use crate::support::idp::Idp;
use crate::support::pki::{Pki, private_ca};
use crate::support::process::Node;
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestDb};

both_databases!(a_provider_behind_a_private_ca_is_trusted_through_the_host_store);

async fn a_provider_behind_a_private_ca_is_trusted_through_the_host_store(db: Db) {
    // Two instances, each on a database of its own; only the first is told about the CA.
    let (Some(db_a), Some(db_b)) = (TestDb::new(db), TestDb::new(db)) else {
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    let Pki { ca, cert, key } = private_ca(pki.path());
    let idp = Idp::start_tls(&cert, &key).await;
    assert!(
        idp.issuer.starts_with("https://127.0.0.1:"),
        "{}",
        idp.issuer
    );

    let ca_file = ca.to_str().unwrap();
    let trusting = node(&db_a, &[("SSL_CERT_FILE", ca_file)]).await;
    let plain = node(&db_b, &[]).await;

    let (ok, outcome, message) = discover(&trusting, &idp.issuer).await;
    assert!(ok, "with the CA in SSL_CERT_FILE: {outcome} {message}");
    assert_eq!(outcome, "ok");

    // Without it, the same provider is refused: the certificate is checked, not ignored.
    let (ok, outcome, message) = discover(&plain, &idp.issuer).await;
    assert!(!ok, "without the CA, discovery must fail: {message}");
    assert_eq!(outcome, "unreachable", "{message}");
}

/// `hallpass serve` on `db` with a bootstrapped admin and `env`.
async fn node(db: &TestDb, env: &[(&str, &str)]) -> Node {
    let mut env = env.to_vec();
    env.extend([
        ("HALLPASS_ADMIN_USERNAME", ADMIN),
        ("HALLPASS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]);
    Node::start(&db.url, db.data_dir(), &env).await
}

/// `POST /api/admin/sso/discovery` on `node` as the admin: (ok, outcome, message).
async fn discover(node: &Node, issuer: &str) -> (bool, String, String) {
    let c = Client::builder().cookie_store(true).build().unwrap();
    let r = c
        .post(node.url("/api/auth/login"))
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", node.log());
    let token = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .post(node.url("/api/admin/sso/discovery"))
        .header("x-csrf-token", token)
        .json(&json!({"issuer": issuer}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    (
        d["ok"].as_bool().unwrap(),
        d["outcome"].as_str().unwrap().to_owned(),
        d["message"].as_str().unwrap_or_default().to_owned(),
    )
}
