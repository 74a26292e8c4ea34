//! `TestApp`: a real Hallpass server on a random loopback port, over a fresh SQLite file or
//! a fresh PostgreSQL database, and helpers to talk to it like a browser or a script.

pub mod browser;
pub mod caddy;
pub mod echo;
pub mod idp;
pub mod logs;
pub mod named;
pub mod nginx;
pub mod pg;
pub mod pki;
pub mod process;
pub mod snippet;

use std::net::SocketAddr;

use hallpass::config::Config;
use hallpass::db::DatabaseUrl;
use hallpass::domain::Password;
use hallpass::state::AppState;
use reqwest::redirect::Policy;
use tokio::sync::oneshot;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

/// A TCP port free on 127.0.0.1 right now (for a server whose address must be known before
/// it starts, such as one named in another's configuration: PostgreSQL, Caddy, nginx,
/// chromedriver, a `hallpass serve` process).
///
/// Taken below the kernel's ephemeral range, never through `bind(0)`: a port that `bind(0)`
/// handed out and let go is back in the pool that every other test's server binds from (they
/// bind port 0), and one of them took it once before Caddy did, so "Caddy" answered as Hallpass.
/// The kernel never hands out ports below that range by itself, and the counter keeps the
/// tests of this process from choosing the same one; the `bind` skips any in use.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const SPAN: u32 = 10_000;
    // The low end of the ephemeral range (`32768 60999` by default).
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    assert!(
        ephemeral_low > SPAN + 1024,
        "the ephemeral port range starts at {ephemeral_low}: no room below it for test servers"
    );
    // Where this process starts in the span: another test process at the same time (a second
    // `cargo test`) most likely starts elsewhere; the bind below catches the rest.
    let start = std::process::id() * 7919 % SPAN;
    for _ in 0..SPAN {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(ephemeral_low - SPAN + offset).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {ephemeral_low}");
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A database for one test; the temp dir (SQLite) lives as long as this value, and so does
/// the data directory (`server.data_dir`: the server secret), kept across restarts.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    data: tempfile::TempDir,
}

impl TestDb {
    /// The `server.data_dir` every app started on this database uses.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }
}

impl TestDb {
    /// `None` when PostgreSQL cannot run here and is not required (the caller skips).
    pub fn new(db: Db) -> Option<TestDb> {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("data/hallpass.db").display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    data: tempfile::tempdir().unwrap(),
                })
            }
            Db::Postgres => match pg::fresh_database() {
                Ok(url) => Some(TestDb {
                    url,
                    _dir: None,
                    data: tempfile::tempdir().unwrap(),
                }),
                Err(e) if pg::required() => panic!(
                    "PostgreSQL is required (CI / HALLPASS_REQUIRE_POSTGRES) but unavailable: {e}"
                ),
                Err(e) => {
                    eprintln!(
                        "\n!!!!! SKIPPING a PostgreSQL test: {e}\n!!!!! Set HALLPASS_TEST_DATABASE_URL or install PostgreSQL server binaries.\n"
                    );
                    None
                }
            },
        }
    }
}

/// Generates `mod $name { sqlite, postgres }` test functions calling `$name(Db)`.
#[macro_export]
macro_rules! both_databases {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::Db::Postgres).await
            }
        }
    )+};
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: TestDb,
}

impl TestApp {
    /// An instance with one admin (`ADMIN` / `ADMIN_PASSWORD`); `None` = skip (see [`TestDb`]).
    pub async fn with_admin(db: Db) -> Option<TestApp> {
        Self::start(db, |_| {}, true).await
    }

    /// A brand-new instance without users.
    pub async fn empty(db: Db) -> Option<TestApp> {
        Self::start(db, |_| {}, false).await
    }

    /// Full control over the configuration.
    pub async fn start(db: Db, tweak: impl FnOnce(&mut Config), admin: bool) -> Option<TestApp> {
        let test_db = TestDb::new(db)?;
        Some(Self::start_on(test_db, tweak, admin).await)
    }

    pub async fn start_on(
        test_db: TestDb,
        tweak: impl FnOnce(&mut Config),
        admin: bool,
    ) -> TestApp {
        let mut config = Config::default();
        config.database.url = DatabaseUrl::parse(&test_db.url).unwrap();
        config.database.max_connections = 4;
        config.server.bind = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = test_db.data_dir().to_owned();
        tweak(&mut config);
        // The first admin as the headless bootstrap creates it, from its variables.
        let bootstrap = admin
            .then(|| {
                hallpass::bootstrap::from_env(|k| match k {
                    "HALLPASS_ADMIN_USERNAME" => Some(ADMIN.to_owned()),
                    "HALLPASS_ADMIN_EMAIL" => Some("admin@example.com".to_owned()),
                    "HALLPASS_ADMIN_PASSWORD" => Some(ADMIN_PASSWORD.to_owned()),
                    _ => None,
                })
                .unwrap()
            })
            .flatten();
        let state = hallpass::server::prepare(config, bootstrap).await.unwrap();
        let listener = hallpass::server::bind(&state.config).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(hallpass::server::run(state.clone(), listener, async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            state,
            shutdown: Some(tx),
            server: Some(server),
            _db: test_db,
        }
    }

    /// Stops the server and hands back its database, to start another server on it.
    pub async fn stop_keep_db(mut self) -> TestDb {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(s) = self.server.take() {
            s.await.unwrap().unwrap();
        }
        let placeholder = TestDb {
            url: String::new(),
            _dir: None,
            data: tempfile::tempdir().unwrap(),
        };
        std::mem::replace(&mut self._db, placeholder)
    }

    /// The data directory of this app (where `secret.key` lives).
    pub fn data_dir(&self) -> &std::path::Path {
        self._db.data_dir()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap()
    }

    /// GETs a page and returns the `csrf_token` of its forms.
    pub async fn csrf(&self, client: &reqwest::Client, path: &str) -> String {
        let html = client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        csrf_in(&html).unwrap_or_else(|| panic!("no csrf_token on {path}: {html}"))
    }

    /// Signs in through the HTML form; returns the response (303 on success).
    pub async fn login(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let token = self.csrf(client, "/login").await;
        client
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", username),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap()
    }

    /// A client signed in as the admin.
    pub async fn admin_client(&self) -> reqwest::Client {
        let c = self.client();
        let r = self.login(&c, ADMIN, ADMIN_PASSWORD).await;
        assert_eq!(r.status(), 303, "admin login failed");
        c
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let rest = &html[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The `hallpass_session` cookie value from a response's Set-Cookie headers.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    set_cookie_header(r).and_then(|h| {
        h.split(';')
            .next()?
            .strip_prefix("hallpass_session=")
            .map(str::to_owned)
    })
}

/// The raw `Set-Cookie` header for the session cookie.
pub fn set_cookie_header(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("hallpass_session="))
        .map(str::to_owned)
}

/// Runs a query on the app's own pool (tests look at the database directly).
pub async fn count_sessions(app: &TestApp, user_id: Option<i64>) -> i64 {
    app.state
        .db
        .run(move |c| hallpass::db::sessions::count(c, user_id))
        .await
        .unwrap()
}

/// The password of accounts made by [`add_user`].
pub const MEMBER_PASSWORD: &str = "member password";

/// Creates an active account `name` (`name@example.com`, [`MEMBER_PASSWORD`]) with `role`
/// through the service, as an admin would; returns its id.
pub async fn add_user(app: &TestApp, name: &str, role: &str) -> i64 {
    use hallpass::service::admin::{InitialPassword, Profile, create_user};
    create_user(
        &app.state.db,
        &app.state.hasher,
        hallpass::service::Actor::system("test"),
        Profile::parse(name, &format!("{name}@example.com"), "", role).unwrap(),
        InitialPassword::Given(Password::parse(MEMBER_PASSWORD).unwrap()),
    )
    .await
    .unwrap()
    .0
    .id
}

/// Runs raw SQL on the app's database (tests only: to set up states the UI cannot reach yet).
pub async fn sql(app: &TestApp, query: impl Into<String>) -> usize {
    use diesel::RunQueryDsl;
    let query = query.into();
    app.state
        .db
        .run(move |c| {
            diesel::sql_query(query.as_str())
                .execute(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
}

/// The stored user by username or email.
pub async fn user(app: &TestApp, login: &str) -> hallpass::domain::User {
    let key = login.to_lowercase();
    app.state
        .db
        .run(move |c| hallpass::db::users::find_by_login(c, &key))
        .await
        .unwrap()
        .unwrap()
}

/// Signs in through the JSON API; returns a client holding the session cookie and its CSRF token.
pub async fn api_login(app: &TestApp, username: &str, password: &str) -> (reqwest::Client, String) {
    let c = app.client();
    let r = c
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "API login failed");
    let body: serde_json::Value = r.json().await.unwrap();
    (c, body["csrf_token"].as_str().unwrap().to_owned())
}

/// A new API key of `username`'s, made through the JSON API; the key itself.
pub async fn new_api_key(app: &TestApp, username: &str, password: &str, name: &str) -> String {
    let (c, csrf) = api_login(app, username, password).await;
    let created: serde_json::Value = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["key"].as_str().unwrap().to_owned()
}

/// The stored `data` column of every session row.
pub async fn session_rows(app: &TestApp) -> Vec<String> {
    use diesel::{QueryableByName, RunQueryDsl, sql_types};
    #[derive(QueryableByName)]
    struct Data {
        #[diesel(sql_type = sql_types::Text)]
        data: String,
    }
    app.state
        .db
        .run(|c| {
            diesel::sql_query("SELECT data FROM sessions")
                .load::<Data>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.data)
        .collect()
}

/// A browser-like client whose connections come from `local` (another loopback address such
/// as 127.0.0.2 stands for a second machine).
pub fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Every audit event with this action, newest first.
pub async fn audit_events(app: &TestApp, action: &str) -> Vec<hallpass::db::audit::Event> {
    let action = action.to_owned();
    app.state
        .db
        .run(move |c| hallpass::db::audit::recent(c, 10_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}
