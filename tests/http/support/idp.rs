//! `Idp`: a real OpenID provider (npm `oidc-provider` 8, `tests/oidc-idp/server.js`) on a random
//! loopback port, for the OpenID Connect login tests.
//!
//! [`Idp::start`] runs `node server.js` (after `npm ci` there, once, if `node_modules` is missing
//! or out of date) and waits for its `READY <issuer>` line. The process ends when the [`Idp`] is
//! dropped (killed), and by itself when its stdin closes, so a test process that dies leaves
//! nothing behind.
//!
//! Clients are registered after start-up ([`Idp::add_client`]) because a Hallpass callback
//! URL is only known once that server runs. Every client must use PKCE (S256). Consent is
//! implied; the IdP's login form takes a username or email and a password
//! ([`Idp::authorize`] fills it in headlessly). The test controls change what the token
//! endpoint returns ([`Idp::set_tamper`]; also: accept a code twice, answer with more than
//! 2 MiB), rotate the signing key ([`Idp::rotate_key`]), count requests per endpoint
//! ([`Idp::counters`]) and show the last authorization request ([`Idp::last_authorization`]);
//! [`Idp::broken_discovery_issuer`] names an issuer whose discovery document lacks the token
//! endpoint and the JWKS URL.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use url::Url;

/// How long `node server.js` may take to print its `READY` line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A user of the IdP (not of Hallpass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUser {
    /// The OpenID subject: a UUID.
    pub sub: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub password: String,
    pub groups: Vec<String>,
}

/// The fixed users of [`Idp::default_users`], usable in `const` position and in assertions.
#[derive(Debug, Clone, Copy)]
pub struct DefaultUser {
    pub sub: &'static str,
    pub username: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    pub password: &'static str,
    pub groups: &'static [&'static str],
}

impl DefaultUser {
    pub fn to_user(self) -> IdpUser {
        IdpUser {
            sub: self.sub.to_owned(),
            username: self.username.to_owned(),
            email: self.email.to_owned(),
            name: self.name.to_owned(),
            password: self.password.to_owned(),
            groups: self.groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }
}

pub const ALICE: DefaultUser = DefaultUser {
    sub: "8d4b1c7e-2f3a-4b6d-9e1f-0a2b3c4d5e61",
    username: "alice",
    email: "alice@idp.example.com",
    name: "Alice Idp",
    password: "alice-idp-password",
    groups: &["admins", "family"],
};

pub const BOB: DefaultUser = DefaultUser {
    sub: "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a12",
    username: "bob",
    email: "bob@idp.example.com",
    name: "Bob Idp",
    password: "bob-idp-password",
    groups: &["family"],
};

/// Carol has no groups.
pub const CAROL: DefaultUser = DefaultUser {
    sub: "c0ffee00-1234-4abc-8def-5678901234ab",
    username: "carol",
    email: "carol@idp.example.com",
    name: "Carol Idp",
    password: "carol-idp-password",
    groups: &[],
};

/// The claim only an oversized userinfo answer carries ([`Tamper::BigUserinfo`]), and its value.
pub const USERINFO_ONLY_CLAIM: &str = "userinfo_email";
pub const USERINFO_ONLY_VALUE: &str = "oversized@idp.example.com";

/// Requests the IdP answered per endpoint since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub discovery: u64,
    pub jwks: u64,
    pub token: u64,
    pub userinfo: u64,
}

/// What the IdP does to its answers (until changed again): the ID token in token endpoint
/// responses, code redemption, or the size of one endpoint's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Unchanged.
    None,
    /// `nonce` is not the one of the authorization request.
    Nonce,
    /// `aud` = `"someone-else"`.
    Audience,
    /// `iss` = `"http://127.0.0.1:1/other"`.
    Issuer,
    /// `exp` = now − 3600, `iat` = now − 7200.
    Expired,
    /// Signed by a fresh key whose `kid` is not in the JWKS.
    UnknownKey,
    /// `azp` = `"someone-else"` (`aud` stays the client).
    Azp,
    /// `iat` = now + the given seconds (and `exp` at least an hour after that).
    IatAhead(i64),
    /// Tokens unchanged, but an authorization code can be redeemed more than once.
    CodeReuse,
    /// The discovery document carries 2 MiB of padding.
    BigDiscovery,
    /// The JWKS carries 2 MiB of padding.
    BigJwks,
    /// Token responses carry 2 MiB of padding.
    BigToken,
    /// Userinfo answers carry 2 MiB of padding and [`USERINFO_ONLY_CLAIM`].
    BigUserinfo,
}

impl Tamper {
    fn mode(self) -> &'static str {
        match self {
            Tamper::None => "none",
            Tamper::Nonce => "nonce",
            Tamper::Audience => "audience",
            Tamper::Issuer => "issuer",
            Tamper::Expired => "expired",
            Tamper::UnknownKey => "unknown_key",
            Tamper::Azp => "azp",
            Tamper::IatAhead(_) => "iat_ahead",
            Tamper::CodeReuse => "code_reuse",
            Tamper::BigDiscovery => "big_discovery",
            Tamper::BigJwks => "big_jwks",
            Tamper::BigToken => "big_token",
            Tamper::BigUserinfo => "big_userinfo",
        }
    }
}

/// A running `tests/oidc-idp/server.js`; killed on drop.
pub struct Idp {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub issuer: String,
    http: reqwest::Client,
    child: Child,
    /// Held open: the server exits when its stdin closes.
    _stdin: ChildStdin,
}

impl Idp {
    /// Starts an IdP with these users and no clients. Panics (with the server's stderr) if
    /// `node` or `npm` is missing or the server does not come up within 20 s.
    pub async fn start(users: &[IdpUser]) -> Idp {
        let users: Vec<Value> = users
            .iter()
            .map(|u| {
                json!({
                    "sub": u.sub, "username": u.username, "email": u.email, "name": u.name,
                    "password": u.password, "groups": u.groups,
                })
            })
            .collect();
        Self::start_with(json!({ "users": users })).await
    }

    /// Starts an IdP serving https with this certificate and key (PEM files), issuer
    /// `https://127.0.0.1:<port>`. Its `/__test/` controls are out of reach of the tests'
    /// client, which speaks plain http only.
    pub async fn start_tls(cert: &Path, key: &Path) -> Idp {
        Self::start_with(json!({ "users": [], "tls": {"cert": cert, "key": key} })).await
    }

    async fn start_with(config: Value) -> Idp {
        let config = config.to_string();
        let started = tokio::task::spawn_blocking(move || spawn_server(&config)).await;
        let (issuer, child, stdin) = match started {
            Ok(started) => started,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("starting the IdP: {e}"),
            },
        };
        Idp {
            issuer,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            child,
            _stdin: stdin,
        }
    }

    /// [`ALICE`], [`BOB`] and [`CAROL`].
    pub fn default_users() -> Vec<IdpUser> {
        [ALICE, BOB, CAROL]
            .into_iter()
            .map(DefaultUser::to_user)
            .collect()
    }

    /// A URL on the IdP, e.g. `url("/.well-known/openid-configuration")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// An issuer whose discovery document names it but has no `token_endpoint` nor `jwks_uri`.
    pub fn broken_discovery_issuer(&self) -> String {
        self.url("/__test/broken-discovery")
    }

    /// Registers (or replaces) a client: confidential with a secret (`client_secret_basic`;
    /// `client_secret_post` is accepted too), public without (`none`). PKCE S256 is required.
    pub async fn add_client(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uris: &[String],
    ) {
        let mut body = json!({ "client_id": client_id, "redirect_uris": redirect_uris });
        if let Some(secret) = client_secret {
            body["client_secret"] = secret.into();
        }
        self.add_client_json(body).await;
    }

    /// Like [`Idp::add_client`] with the JSON body of `POST /__test/clients` as is:
    /// `client_id`, `client_secret` (optional), `redirect_uris`, `post_logout_redirect_uris`.
    pub async fn add_client_json(&self, body: Value) -> Value {
        self.control(reqwest::Method::POST, "/__test/clients", Some(body))
            .await
    }

    pub async fn set_tamper(&self, t: Tamper) {
        let mut body = json!({ "mode": t.mode() });
        if let Tamper::IatAhead(seconds) = t {
            body["seconds"] = seconds.into();
        }
        self.control(reqwest::Method::POST, "/__test/tamper", Some(body))
            .await;
    }

    /// Requests answered per endpoint since start-up.
    pub async fn counters(&self) -> Counters {
        let v = self
            .control(reqwest::Method::GET, "/__test/counters", None)
            .await;
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        Counters {
            discovery: n("discovery"),
            jwks: n("jwks"),
            token: n("token"),
            userinfo: n("userinfo"),
        }
    }

    /// Adds a new signing key (new `kid`) to the JWKS, keeping the old one, and signs every
    /// ID token from now on with it. Returns the new `kid`.
    pub async fn rotate_key(&self) -> String {
        let r = self
            .control(reqwest::Method::POST, "/__test/rotate-key", None)
            .await;
        r["kid"].as_str().unwrap().to_owned()
    }

    /// The query parameters of the last authorization request (`Value::Null` before any).
    pub async fn last_authorization(&self) -> Value {
        self.control(reqwest::Method::GET, "/__test/last-authorization", None)
            .await
    }

    /// The IdP's JWKS (public keys).
    pub async fn jwks(&self) -> Value {
        self.control(reqwest::Method::GET, "/jwks", None).await
    }

    /// Given the authorization URL Hallpass redirected the browser to, signs in at the IdP as
    /// `login` (username or email) and returns the URL the IdP redirects back to (the client's
    /// redirect_uri with `code` and `state`, or with `error`), without fetching it.
    pub async fn authorize(&self, authorization_url: &str, login: &str, password: &str) -> String {
        self.try_authorize(authorization_url, login, password)
            .await
            .unwrap_or_else(|e| panic!("sign-in at the IdP as {login:?} failed: {e}"))
    }

    /// [`Idp::authorize`], with `Err` (what the IdP showed instead) when it does not redirect
    /// back: wrong password (the form again, with "Invalid credentials"), an error page, …
    pub async fn try_authorize(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
    ) -> Result<String, String> {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let issuer = Url::parse(&self.issuer).unwrap();
        let mut url = Url::parse(authorization_url)
            .map_err(|e| format!("bad authorization URL {authorization_url:?}: {e}"))?;
        let mut form: Option<[(&str, &str); 2]> = None;
        let mut signed_in = false;
        for _ in 0..10 {
            let request = match form.take() {
                Some(fields) => client.post(url.clone()).form(&fields),
                None => client.get(url.clone()),
            };
            let r = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = r.status();
            if status.is_redirection() {
                let location = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| format!("{status} without Location from {url}"))?;
                let next = url
                    .join(location)
                    .map_err(|e| format!("bad Location {location:?}: {e}"))?;
                if next.origin() != issuer.origin() {
                    return Ok(next.into());
                }
                url = next;
                continue;
            }
            let body = r.text().await.unwrap_or_default();
            if status != 200 || !body.contains("name=\"login\"") {
                return Err(format!("{status} at {url}: {body}"));
            }
            if signed_in {
                return Err(format!("the IdP showed its login form again: {body}"));
            }
            let action = form_action(&body).ok_or_else(|| format!("no form action: {body}"))?;
            url = url
                .join(&action)
                .map_err(|e| format!("bad form action {action:?}: {e}"))?;
            form = Some([("login", login), ("password", password)]);
            signed_in = true;
        }
        Err(format!("too many redirects, last at {url}"))
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("IdP {path}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "IdP {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("IdP {path}: {e} in {text}"))
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The header and the claims of a compact JWS, decoded without any verification.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let p = parts.next().unwrap_or_else(|| panic!("not a JWT: {token}"));
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    };
    (part(), part())
}

/// The `action` of the first form in a page (attribute values from server.js: no entities
/// other than `&amp;`).
fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let at = form.find("action=\"")? + "action=\"".len();
    let rest = &form[at..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// `tests/oidc-idp`.
/// Runs `node <script> <args>` in tests/oidc-idp (its npm packages installed first): the
/// Node tools beside the provider, such as `openapi-check.mjs`.
pub fn node_tool(script: &str, args: &[&str]) -> std::process::Output {
    let dir = idp_dir();
    ensure_node_modules(&dir);
    Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): apt-get install -y nodejs npm"))
}

fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-idp")
}

/// Runs `npm ci` in `dir` unless `node_modules` has the locked versions of the direct
/// dependencies. Once per process (a mutex) and one process at a time (a lock file).
fn ensure_node_modules(dir: &Path) {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if *checked {
        return;
    }
    if !installed(dir) {
        let lock_path = std::env::temp_dir().join("hallpass-oidc-idp-npm-ci.lock");
        let lock = File::create(&lock_path).unwrap();
        lock.lock().unwrap();
        if !installed(dir) {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run `npm ci` in {} ({e}): the OIDC tests need Node.js and npm \
                         (apt-get install -y nodejs npm)",
                        dir.display()
                    )
                });
            assert!(
                out.status.success(),
                "`npm ci` in {} failed ({}):\n{}\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lock.unlock().unwrap();
    }
    *checked = true;
}

/// Whether every dependency in package.json is installed at the version package-lock.json pins.
fn installed(dir: &Path) -> bool {
    let read = |p: PathBuf| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let (Some(package), Some(lock)) = (
        read(dir.join("package.json")),
        read(dir.join("package-lock.json")),
    ) else {
        panic!("{} lacks package.json or package-lock.json", dir.display());
    };
    let Some(deps) = package["dependencies"].as_object() else {
        return true;
    };
    deps.keys().all(|name| {
        let locked = &lock["packages"][format!("node_modules/{name}")]["version"];
        let have = read(dir.join("node_modules").join(name).join("package.json"));
        have.is_some_and(|have| !locked.is_null() && have["version"] == *locked)
    })
}

/// Spawns `node server.js` and waits for `READY <issuer>`. Blocking.
fn spawn_server(config: &str) -> (String, Child, ChildStdin) {
    let dir = idp_dir();
    ensure_node_modules(&dir);
    let mut child = Command::new("node")
        .arg("server.js")
        .current_dir(&dir)
        .env("IDP_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `node` ({e}): the OIDC tests need Node.js (apt-get install -y nodejs npm)"
            )
        });
    let stdin = child.stdin.take().unwrap();

    // stderr: kept for the panic message and echoed into the test's output.
    let stderr_text = Arc::new(Mutex::new(String::new()));
    let stderr_thread = {
        let stderr = child.stderr.take().unwrap();
        let text = Arc::clone(&stderr_text);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[idp] {line}");
                let mut text = text.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    // stdout: the READY line, then anything else is echoed (and the pipe kept drained).
    let (ready_tx, ready_rx) = mpsc::channel::<String>();
    {
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match (line.strip_prefix("READY "), ready.take()) {
                    (Some(issuer), Some(tx)) => {
                        let _ = tx.send(issuer.trim().to_owned());
                    }
                    (_, tx) => {
                        ready = tx;
                        eprintln!("[idp] {line}");
                    }
                }
            }
        });
    }

    match ready_rx.recv_timeout(START_TIMEOUT) {
        Ok(issuer) => (issuer, child, stdin),
        Err(e) => {
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => {
                    format!("no READY line within {START_TIMEOUT:?}")
                }
                mpsc::RecvTimeoutError::Disconnected => "it closed stdout before READY".to_owned(),
            };
            let _ = child.kill();
            let status = child.wait();
            let _ = stderr_thread.join();
            let stderr = stderr_text
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            panic!(
                "the test IdP (node {}/server.js) did not start: {why}; exit: {status:?}\nstderr:\n{stderr}",
                dir.display()
            )
        }
    }
}
