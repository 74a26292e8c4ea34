//! PostgreSQL over TLS. libpq is compiled into the binary, and so is the OpenSSL it uses for
//! TLS (openssl-sys "vendored"): these tests show that `sslmode=verify-full` works, that the
//! server's certificate is really checked, and that `sslrootcert=system` reads the host's store
//! (Debian's `/usr/lib/ssl`, or `SSL_CERT_FILE`), as it did with the system's libssl.
//!
//! Real parts: a CA and a certificate for 127.0.0.1 made by the `openssl` command, a
//! PostgreSQL cluster of its own that rejects plain TCP connections, and real `hallpass`
//! processes (`SSL_CERT_FILE` is read from the process's environment).

use std::path::Path;
use std::process::Command;

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::Client;
use serde_json::json;

use crate::support::pg;
use crate::support::pki::private_ca;
use crate::support::process::Node;
use crate::support::{ADMIN, ADMIN_PASSWORD};

#[tokio::test]
async fn postgres_over_tls_checks_the_server_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let ca = private_ca(pki.path());
    let stranger = tempfile::tempdir().unwrap();
    let other_ca = private_ca(stranger.path()).ca;
    let server = match pg::tls_cluster(&ca.cert, &ca.key) {
        Ok(server) => server,
        Err(e) if !pg::required() => {
            eprintln!("\n!!!!! SKIPPING the PostgreSQL TLS test: {e}\n");
            return;
        }
        Err(e) => panic!("cannot start a PostgreSQL cluster with TLS: {e}"),
    };
    let db = format!("{}/hp_tls", server.base);
    let mut admin = PgConnection::establish(&format!("{}/postgres", server.base)).unwrap();
    diesel::sql_query("CREATE DATABASE hp_tls")
        .execute(&mut admin)
        .unwrap();
    let ca_file = ca.ca.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();

    // Verified against the CA named in the URL: the server starts, and signs the admin in.
    let url = format!("{db}?sslmode=verify-full&sslrootcert={ca_file}");
    let node = Node::start(
        &url,
        data.path(),
        &[
            ("HALLPASS_ADMIN_USERNAME", ADMIN),
            ("HALLPASS_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    )
    .await;
    let r = Client::new()
        .post(node.url("/api/auth/login"))
        .json(&json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", node.log());
    drop(node);

    // `sslrootcert=system`: OpenSSL's default store, which `SSL_CERT_FILE` replaces.
    let url = format!("{db}?sslmode=verify-full&sslrootcert=system");
    let node = Node::start(&url, data.path(), &[("SSL_CERT_FILE", ca_file)]).await;
    let r = reqwest::get(node.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200, "{}", node.log());
    drop(node);

    // A certificate from another CA is refused, with the reason.
    let refused = serve_fails(
        &format!(
            "{db}?sslmode=verify-full&sslrootcert={}",
            other_ca.display()
        ),
        data.path(),
    );
    assert!(
        refused.contains("certificate verify failed"),
        "expected a verification failure, got: {refused}"
    );
    // …and so is the store without the CA in it (no SSL_CERT_FILE here).
    let refused = serve_fails(
        &format!("{db}?sslmode=verify-full&sslrootcert=system"),
        data.path(),
    );
    assert!(
        refused.contains("certificate verify failed"),
        "expected a verification failure, got: {refused}"
    );
    // Without TLS the cluster turns the connection away: the connections above were TLS.
    let refused = serve_fails(&format!("{db}?sslmode=disable"), data.path());
    assert!(
        refused.contains("no encryption"),
        "expected pg_hba's refusal of a plain connection, got: {refused}"
    );
}

/// The OpenSSL in the binary looks for its configuration and default store where Debian keeps
/// them (`OPENSSL_CONFIG_DIR` in `.cargo/config.toml`), not in OpenSSL's build default
/// `/usr/local/ssl`, which is empty on every distribution: `sslrootcert=system` relies on it.
#[test]
fn the_compiled_in_openssl_uses_the_hosts_configuration_directory() {
    let binary = std::fs::read(env!("CARGO_BIN_EXE_hallpass")).unwrap();
    let has = |needle: &str| binary.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(has("OPENSSLDIR: \"/usr/lib/ssl\""));
    assert!(!has("OPENSSLDIR: \"/usr/local/ssl\""));
}

/// Runs `hallpass serve` on `url`, which must fail to start; returns what it printed.
fn serve_fails(url: &str, data: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_DATABASE__URL", url)
        .env("HALLPASS_DATABASE__CONNECT_TIMEOUT", "5s")
        .env("HALLPASS_SERVER__BIND", "127.0.0.1:0")
        .env("HALLPASS_SERVER__DATA_DIR", data)
        .arg("serve")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "hallpass started on {url}: {text}");
    text
}
