//! The `hallpass` binary: configuration layering, errors, bootstrap, start-up, shutdown.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Db, TestApp, TestDb, pg, sql};

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// The binary with a clean environment: no HALLPASS_* from the developer's shell.
pub(crate) fn hallpass(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    c
}

pub(crate) use crate::support::free_port;

#[test]
fn help_lists_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let out = hallpass(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("serve") && help.contains("check-config"),
        "{help}"
    );
}

#[test]
fn check_config_layers_file_then_environment_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.toml"),
        "[server]\nbind = \"127.0.0.1:9999\"\npublic_url = \"https://auth.example.com\"\n[database]\nurl = \"postgres://hp:supersecret@db.example/hallpass\"\n[session]\nidle_timeout = \"12h\"\n",
    )
    .unwrap();
    let out = hallpass(dir.path())
        .args(["--config", "custom.toml", "check-config"])
        .env("HALLPASS_SERVER__BIND", "0.0.0.0:7777")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("bind = \"0.0.0.0:7777\""),
        "environment beats the file: {text}"
    );
    assert!(
        text.contains("public_url = \"https://auth.example.com\""),
        "file beats defaults"
    );
    assert!(text.contains("idle_timeout = \"12h\""));
    assert!(
        text.contains("max_lifetime = \"30d\""),
        "defaults fill the rest"
    );
    assert!(!text.contains("supersecret"), "{text}");
    assert!(text.contains("REDACTED"));

    // HALLPASS_CONFIG names the file too; ./hallpass.toml is read when present.
    let out = hallpass(dir.path())
        .arg("check-config")
        .env("HALLPASS_CONFIG", "custom.toml")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("bind = \"127.0.0.1:9999\""));
    std::fs::write(
        dir.path().join("hallpass.toml"),
        "[server]\nbind = \"127.0.0.1:8123\"\n",
    )
    .unwrap();
    let out = hallpass(dir.path()).arg("check-config").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("bind = \"127.0.0.1:8123\""));
    let out = hallpass(dir.path()).arg("check-config").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("url = \"sqlite://./data/hallpass.db\""));
}

#[test]
fn bad_values_exit_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, expect) in [
        ("HALLPASS_SERVER__BIND", "not-an-address", "BIND"),
        ("HALLPASS_SESSION__IDLE_TIMEOUT", "soon", "IDLE_TIMEOUT"),
        (
            "HALLPASS_DATABASE__URL",
            "mysql://x/y",
            "must start with sqlite:// or postgres://",
        ),
        (
            "HALLPASS_SERVER__PUBLIC_URL",
            "auth.example.com",
            "PUBLIC_URL",
        ),
        ("HALLPASS_SERVER__BINDD", "127.0.0.1:1", "bindd"),
        (
            "HALLPASS_PASSWORD__ARGON2_PARALLELISM",
            "0",
            "password.argon2_parallelism",
        ),
        (
            "HALLPASS_AUTH__PROXY__TRUSTED_PROXIES",
            "[10.0.0.5, 0.0.0.0/0]",
            "would let anyone on the network",
        ),
        (
            "HALLPASS_AUTH__PROXY__TRUSTED_PROXIES",
            "[\"::/0\"]",
            "auth.proxy.trusted_proxies",
        ),
        ("HALLPASS_AUTH__PROXY__PRESET", "nginx", "auth.proxy.preset"),
        ("HALLPASS_AUTH__PROXY__POLICY", "merge", "auth.proxy.policy"),
    ] {
        let out = hallpass(dir.path())
            .arg("check-config")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.to_lowercase().contains(&expect.to_lowercase()),
            "{var}: {err}"
        );
    }
    // SSO variables are checked too, and their secrets never printed.
    let out = hallpass(dir.path())
        .arg("check-config")
        .env("HALLPASS_OIDC_PROVIDERS", "authelia")
        .env("HALLPASS_OIDC_AUTHELIA_CLIENT_ID", "hallpass")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HALLPASS_OIDC_AUTHELIA_ISSUER"));
    let out = hallpass(dir.path())
        .arg("check-config")
        .env("HALLPASS_OIDC_PROVIDERS", "authelia")
        .env("HALLPASS_OIDC_AUTHELIA_ISSUER", "https://auth.example.com")
        .env("HALLPASS_OIDC_AUTHELIA_CLIENT_ID", "hallpass")
        .env("HALLPASS_OIDC_AUTHELIA_CLIENT_SECRET", "very-secret-value")
        .env(
            "HALLPASS_SERVER__TRUSTED_PROXIES",
            "[10.0.0.5, 172.18.0.0/16]",
        )
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        shown.contains("authelia: ") && shown.contains("[REDACTED]"),
        "{shown}"
    );
    assert!(!shown.contains("very-secret-value"), "{shown}");
    assert!(shown.contains("172.18.0.0/16"), "{shown}");
    let out = hallpass(dir.path())
        .arg("check-config")
        .env("HALLPASS_SERVER__TRUSTED_PROXIES", "[10.0.0.5, nonsense]")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.trusted_proxies"));
    let out = hallpass(dir.path())
        .args(["--config", "missing.toml", "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml does not exist"));
}

#[test]
fn bootstrap_variables_are_checked_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = hallpass(dir.path())
        .env("HALLPASS_ADMIN_USERNAME", "root")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("neither HALLPASS_ADMIN_PASSWORD nor HALLPASS_ADMIN_PASSWORD_FILE")
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
    // A value breaking the account rules is found when the variables are used, on the
    // empty database: still exit code 2, and no account.
    let out = hallpass(dir.path())
        .env("HALLPASS_ADMIN_USERNAME", "root")
        .env("HALLPASS_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HALLPASS_ADMIN_PASSWORD: Password must be at least 8 characters long."),
        "{err}"
    );
    assert!(
        !err.contains("short"),
        "the password itself is never printed: {err}"
    );
}

#[test]
fn an_unreachable_database_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = hallpass(dir.path())
        .env(
            "HALLPASS_DATABASE__URL",
            format!("postgres://hp:topsecret@127.0.0.1:{port}/hallpass"),
        )
        .env("HALLPASS_DATABASE__CONNECT_TIMEOUT", "2s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect to the database at postgres://hp:REDACTED@127.0.0.1"),
        "{err}"
    );
    assert!(
        err.contains("Connection refused") || err.contains("connection refused"),
        "{err}"
    );
    assert!(!err.contains("topsecret"));
}

/// A running binary whose stderr is read line by line.
pub(crate) struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Running {
    pub(crate) fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?}; log so far:\n{}",
                    self.log.join("\n")
                ),
            }
        }
    }

    pub(crate) fn terminate(mut self) -> (Option<i32>, String) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.log.push(line);
        }
        (status.code(), self.log.join("\n"))
    }
}

pub(crate) fn database_url(db: Db, dir: &Path) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}", dir.join("hp.db").display())),
        Db::Postgres => TestDb::new(Db::Postgres).map(|d| d.url),
    }
}

both_databases!(
    first_boot_prints_the_setup_code_and_stops_gracefully,
    bootstrap_admin_from_the_environment,
    a_newer_schema_is_refused
);

async fn first_boot_prints_the_setup_code_and_stops_gracefully(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database_url(db, dir.path()) else {
        return;
    };
    let port = free_port();
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_DATABASE__URL", &url);
    let mut server = Running::start(cmd);
    let line = server.wait_for("setup code: ");
    let code = line.rsplit("setup code: ").next().unwrap().trim();
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}/setup")),
        "{line}"
    );
    assert_eq!(code.len(), 9, "{line}");
    assert!(
        code.chars().enumerate().all(|(i, ch)| if i == 4 {
            ch == '-'
        } else {
            ch.is_ascii_uppercase() || ch.is_ascii_digit()
        }),
        "{code}"
    );
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // `hallpass setup-code` prints the same code while the server runs (it is in the database).
    let setup_code = || {
        hallpass(dir.path())
            .env("HALLPASS_DATABASE__URL", &url)
            .arg("setup-code")
            .output()
            .unwrap()
    };
    let out = setup_code();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), code);
    let code = code.to_owned();
    let (exit, log) = server.terminate();
    assert_eq!(exit, Some(0), "{log}");
    assert!(
        log.contains("shutdown signal received") && log.contains("Hallpass stopped"),
        "{log}"
    );

    // A restart keeps the code; once an admin exists there is none.
    let out = setup_code();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), code);
    let mut config = hallpass::config::Config::default();
    config.database.url = hallpass::db::DatabaseUrl::parse(&url).unwrap();
    config.server.data_dir = dir.path().join("data");
    let state = hallpass::server::prepare(config, None).await.unwrap();
    assert_eq!(state.setup.code().as_deref(), Some(code.as_str()));
    let admin = hallpass::service::accounts::NewAdmin::parse(
        "owner",
        "",
        "a long passphrase",
        "a long passphrase",
    )
    .unwrap();
    hallpass::service::accounts::create_first_admin(
        &state.db,
        &state.hasher,
        admin,
        hallpass::service::Actor::system("test"),
    )
    .await
    .unwrap();
    let out = setup_code();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already set up"),
        "{out:?}"
    );
}

async fn bootstrap_admin_from_the_environment(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = database_url(db, dir.path()) else {
        return;
    };
    std::fs::write(dir.path().join("pw"), "from the file 123\n").unwrap();
    // A bad value stops the start of an empty instance (exit code 2), before any account.
    let out = hallpass(dir.path())
        .env(
            "HALLPASS_SERVER__BIND",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("HALLPASS_DATABASE__URL", &url)
        .env("HALLPASS_ADMIN_USERNAME", "boss")
        .env("HALLPASS_ADMIN_EMAIL", "boss at example.com")
        .env("HALLPASS_ADMIN_PASSWORD_FILE", dir.path().join("pw"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HALLPASS_ADMIN_EMAIL: Email must be"), "{err}");
    let port = free_port();
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_DATABASE__URL", &url)
        .env("HALLPASS_ADMIN_USERNAME", "boss")
        .env("HALLPASS_ADMIN_EMAIL", "boss@example.com")
        .env("HALLPASS_ADMIN_PASSWORD", "not this one")
        .env("HALLPASS_ADMIN_PASSWORD_FILE", dir.path().join("pw"));
    let mut server = Running::start(cmd);
    server.wait_for("created the first admin");
    server.wait_for("listening");
    let login = |password: &'static str| async move {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/auth/login"))
            .json(&serde_json::json!({"username": "boss@example.com", "password": password}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        login("from the file 123").await,
        200,
        "the file wins, without its newline"
    );
    assert_eq!(login("not this one").await, 401);
    let (_, log) = server.terminate();
    assert!(!log.contains("setup code"), "no wizard when bootstrapped");
    assert!(
        !log.contains("from the file"),
        "the password is never logged"
    );

    // Second boot: users exist, so the variables change nothing and a warning says so;
    // their values are not even checked (a stale one must not keep the server down).
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_DATABASE__URL", &url)
        .env("HALLPASS_ADMIN_USERNAME", "boss")
        .env("HALLPASS_ADMIN_EMAIL", "no longer an address")
        .env("HALLPASS_ADMIN_PASSWORD", "a different password");
    let mut server = Running::start(cmd);
    server.wait_for("users already exist: nothing was changed");
    server.wait_for("listening");
    assert_eq!(login("from the file 123").await, 200);
    assert_eq!(login("a different password").await, 401);
    server.terminate();
}

async fn a_newer_schema_is_refused(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    sql(
        &app,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000000')",
    )
    .await;
    let test_db = app.stop_keep_db().await;
    let mut config = hallpass::config::Config::default();
    config.database.url = hallpass::db::DatabaseUrl::parse(&test_db.url).unwrap();
    config.server.data_dir = test_db.data_dir().to_owned();
    let err = hallpass::server::prepare(config, None)
        .await
        .expect_err("start-up must fail");
    let message = err.to_string();
    assert!(
        message.contains("newer than this binary") && message.contains("29990101000000"),
        "{message}"
    );
    let _ = pg::required();
}

#[test]
fn the_default_database_is_created_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"));
    let mut server = Running::start(cmd);
    server.wait_for("setup code");
    assert!(dir.path().join("data/hallpass.db").exists());
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn hallpass_secret_key_replaces_the_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let value = "an operator-chosen secret of more than 32 characters";
    let mut cmd = hallpass(dir.path());
    cmd.env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_SECRET_KEY", value);
    let mut server = Running::start(cmd);
    server.wait_for("setup code");
    assert!(dir.path().join("data/hallpass.db").exists());
    assert!(
        !dir.path().join("data/secret.key").exists(),
        "the environment wins: no file"
    );
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains(value), "the secret is never logged");
}

both_databases!(healthcheck_asks_readyz_on_the_configured_address);

/// `hallpass healthcheck`: exit 0 when the server on `server.bind` answers `/readyz` with 200
/// (a wildcard bind is reached on loopback), 1 with a reason when nothing listens there or
/// it answers anything else.
async fn healthcheck_asks_readyz_on_the_configured_address(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let check = |bind: String| {
        tokio::task::spawn_blocking(move || {
            let dir = tempfile::tempdir().unwrap();
            hallpass(dir.path())
                .arg("healthcheck")
                .env("HALLPASS_SERVER__BIND", bind)
                .output()
                .unwrap()
        })
    };
    let port = app.addr.port();
    let ok = check(format!("0.0.0.0:{port}")).await.unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let nobody = check(format!("127.0.0.1:{}", free_port())).await.unwrap();
    assert_eq!(nobody.status.code(), Some(1));
    let why = String::from_utf8_lossy(&nobody.stderr);
    assert!(why.starts_with("unhealthy: http://127.0.0.1:"), "{why}");

    // A server that is up but not ready (its database gone) answers 503.
    let not_ready = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = not_ready.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = not_ready.accept().unwrap();
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).unwrap();
        s.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    });
    let down = check(addr.to_string()).await.unwrap();
    server.join().unwrap();
    assert_eq!(down.status.code(), Some(1));
    let why = String::from_utf8_lossy(&down.stderr);
    assert!(why.contains("503"), "{why}");
}
