//! Secrets from files (issue 9, point 9): every secret that can come from the environment can
//! come from a file named by the same variable plus `_FILE` (Docker secrets), and the database
//! password from `database.password_file`. The PostgreSQL role of these tests really needs its
//! password (the test cluster asks members of one role for scram-sha-256).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hallpass::config::Config;

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, TestDb, pg};

both_databases!(the_binary_takes_every_secret_from_files);

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// A new PostgreSQL database whose role signs in with `password`; `None` = skip.
fn database_with_password(password: &str) -> Option<String> {
    match pg::fresh_database_with_password(password) {
        Ok(url) => Some(url),
        Err(e) if pg::required() && !e.contains("built-in test cluster") => {
            panic!("PostgreSQL is required but unavailable: {e}")
        }
        Err(e) => {
            eprintln!("\n!!!!! SKIPPING a PostgreSQL password test: {e}\n");
            None
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes a `hallpass.toml` with this `[database]` section (and a data directory inside
/// `dir`) and loads it as `hallpass` does.
fn load(dir: &Path, database: &str) -> Result<Config, String> {
    let toml = format!(
        "[server]\ndata_dir = \"{}\"\n[database]\n{database}",
        dir.join("data").display()
    );
    let path = write(dir, "hallpass.toml", &toml);
    Config::load(Some(&path)).map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_password_comes_from_password_file() {
    let password = "pa:ss/w@rd from a file";
    let Some(url) = database_with_password(password) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "pw", &format!("{password}\n"));
    let wrong = write(dir.path(), "wrong", "not the password\n");
    // Without the password, and with a wrong one, the server cannot start: the role really
    // needs it.
    for (database, refusal) in [
        (
            format!("url = \"{url}\"\nconnect_timeout = \"3s\""),
            "no password supplied",
        ),
        (
            format!(
                "url = \"{url}\"\npassword_file = \"{}\"\nconnect_timeout = \"3s\"",
                wrong.display()
            ),
            "password authentication failed",
        ),
    ] {
        let config = load(dir.path(), &database).unwrap();
        let err = hallpass::server::prepare(config, None).await.err();
        let err = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(refusal), "{err}");
        assert!(!err.contains("not the password"), "{err}");
    }
    let config = load(
        dir.path(),
        &format!("url = \"{url}\"\npassword_file = \"{}\"", good.display()),
    )
    .unwrap();
    assert!(
        !config.to_redacted_toml().contains("from a file"),
        "check-config never shows it"
    );
    let database = config.database.clone();
    let app = TestApp::start_on(
        TestDb::new(Db::Sqlite).unwrap(),
        move |c| {
            c.database = database;
            c.database.max_connections = 2;
        },
        true,
    )
    .await;
    assert_eq!(app.state.db.backend(), hallpass::db::Backend::Postgres);
    app.admin_client().await;
}

/// A `hallpass` process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real binary, configured by `*_FILE` variables only: the database URL (with its
/// password, on PostgreSQL), the server secret, the break-glass key and the first admin's
/// password. Both admins sign in with what the files hold, minus the trailing newline.
async fn the_binary_takes_every_secret_from_files(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("db/hallpass.db").display()),
        Db::Postgres => {
            let password = "db password from a file";
            let Some(url) = database_with_password(password) else {
                return;
            };
            url.replacen("@", &format!(":{}@", password.replace(' ', "%20")), 1)
        }
    };
    let secrets = dir.path().join("run-secrets");
    std::fs::create_dir(&secrets).unwrap();
    let break_glass = "break-glass key from a file";
    let files = [
        ("HALLPASS_DATABASE__URL_FILE", format!("{url}\n")),
        ("HALLPASS_SECRET_KEY_FILE", format!("{}\n", "s".repeat(40))),
        ("HALLPASS_ADMIN_KEY_FILE", format!("{break_glass}\n")),
        (
            "HALLPASS_ADMIN_PASSWORD_FILE",
            format!("{ADMIN_PASSWORD}\n"),
        ),
    ];
    let port = crate::support::free_port();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HALLPASS_ADMIN_USERNAME", "root")
        // Set too, and ignored: the file wins.
        .env("HALLPASS_ADMIN_KEY", "a break-glass key in the environment")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
    for (var, text) in &files {
        let name = var.to_lowercase();
        cmd.env(var, write(&secrets, &name, text));
    }
    let mut server = Server(cmd.spawn().unwrap());
    let log = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Ready means *this* process answers (not another test's server on a reused port).
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("hallpass exited ({status}):\n{}", log());
        }
        match client.get(format!("{base}/readyz")).send().await {
            Ok(r) if r.status() == 200 => break,
            _ if Instant::now() > deadline => panic!("hallpass did not become ready:\n{}", log()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let login = |username: &str, password: &str| {
        client
            .post(format!("{base}/api/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
    };
    assert_eq!(login("root", ADMIN_PASSWORD).await.unwrap().status(), 200);
    assert_eq!(login(ADMIN, break_glass).await.unwrap().status(), 200);
    let from_env = login(ADMIN, "a break-glass key in the environment");
    assert_eq!(from_env.await.unwrap().status(), 401);
    assert!(
        !dir.path().join("data/secret.key").exists(),
        "the server secret came from its file"
    );
    if db == Db::Sqlite {
        assert!(dir.path().join("db/hallpass.db").exists());
    }
}

/// `check-config` names the variable and the path of a secret file it cannot read, and
/// never prints a secret read from a file.
#[test]
fn unreadable_secret_files_stop_the_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .envs(vars.iter().copied())
            .arg("check-config")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let oidc = [
        ("HALLPASS_OIDC_PROVIDERS", "authelia"),
        ("HALLPASS_OIDC_AUTHELIA_ISSUER", "https://auth.example.com"),
        ("HALLPASS_OIDC_AUTHELIA_CLIENT_ID", "hallpass"),
    ];
    for var in [
        "HALLPASS_ADMIN_KEY_FILE",
        "HALLPASS_DATABASE__URL_FILE",
        "HALLPASS_DATABASE__PASSWORD_FILE",
        "HALLPASS_OIDC_AUTHELIA_CLIENT_SECRET_FILE",
    ] {
        let mut vars = oidc.to_vec();
        vars.push((var, "/nonexistent/secret"));
        let (code, _, err) = run(&vars);
        assert_eq!(code, Some(2), "{var}: {err}");
        let key = match var {
            "HALLPASS_DATABASE__URL_FILE" => "database.url_file",
            "HALLPASS_DATABASE__PASSWORD_FILE" => "database.password_file",
            other => other,
        };
        assert!(
            err.contains(key) && err.contains("/nonexistent/secret"),
            "{var}: {err}"
        );
    }
    let secret = write(dir.path(), "client-secret", "very-secret-value\n");
    let mut vars = oidc.to_vec();
    let path = secret.display().to_string();
    vars.push(("HALLPASS_OIDC_AUTHELIA_CLIENT_SECRET_FILE", &path));
    let (code, out, err) = run(&vars);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("client_secret=[REDACTED]"), "{out}");
    assert!(!out.contains("very-secret-value"), "{out}");
}
