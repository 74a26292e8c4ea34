//! Several Hallpass servers on one database: a second in-process server beside a
//! [`TestApp`], and real `hallpass` processes started from the built binary.

use super::{TestApp, TestDb};

/// The database of `app`, for a second server to start on (`TestApp::start_on`); give that
/// server `app`'s data directory too (`server.data_dir`), so that both hold one secret, as
/// the nodes of one deployment do.
pub fn same_database(app: &TestApp) -> TestDb {
    TestDb {
        url: app._db.url.clone(),
        _dir: None,
        data: tempfile::tempdir().unwrap(),
    }
}

/// A second in-process server on `app`'s database and data directory, with `tweak`.
pub async fn beside(app: &TestApp, tweak: impl FnOnce(&mut hallpass::config::Config)) -> TestApp {
    let data = app.data_dir().to_owned();
    TestApp::start_on(
        same_database(app),
        move |c| {
            tweak(c);
            c.server.data_dir = data;
        },
        false,
    )
    .await
}

/// A real `hallpass serve` process (the built binary), killed when dropped.
pub struct Node {
    pub addr: std::net::SocketAddr,
    child: std::process::Child,
    /// Its log (stdout and stderr), for failure messages.
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts `hallpass serve` on `database_url` with the data directory `data_dir` (hold
    /// one secret in every node of a deployment), more configuration in `env`, and waits
    /// until `/healthz` answers.
    pub async fn start(
        database_url: &str,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.path().join("hallpass.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hallpass"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("HALLPASS_DATABASE__URL", database_url)
            .env("HALLPASS_DATABASE__MAX_CONNECTIONS", "4")
            .env("HALLPASS_SERVER__BIND", addr.to_string())
            .env("HALLPASS_SERVER__DATA_DIR", data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.arg("serve").spawn().unwrap();
        let node = Node {
            addr,
            child,
            log,
            _dir: dir,
        };
        node.wait_ready().await;
        node
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let start = std::time::Instant::now();
        loop {
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "hallpass on {} did not start: {}",
                self.addr,
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The process's id (for reading `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Signs in through the JSON API; returns a client that keeps cookies (cookies ignore the
    /// port, so it holds for every node) and follows no redirects, and its CSRF token.
    pub async fn sign_in(&self, username: &str, password: &str) -> (reqwest::Client, String) {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let r = c
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "sign-in of {username} on {}", self.addr);
        let v: serde_json::Value = r.json().await.unwrap();
        (c, v["csrf_token"].as_str().unwrap().to_owned())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
