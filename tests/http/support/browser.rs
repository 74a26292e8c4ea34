//! A real headless Chromium, driven through chromedriver (WebDriver) with `fantoccini`.
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port with a fresh
//! Chromium profile, and ends both when dropped, so tests share nothing. Without
//! `/usr/bin/chromium` and `chromedriver` the browser tests are skipped with a loud message,
//! unless [`super::pg::required`] (CI) says everything must run: then they fail.
//!
//! Screenshots go to `docs/screenshots/<name>.png` and `<name>-dark.png` (the dark colour
//! scheme, emulated through the DevTools protocol), the images of `docs/screens.md`. Only
//! browsers started with `screenshots: true` write them (the SQLite variant of each test), so
//! the two database variants of a test never write the same file at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::{Db, TestApp};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long to wait for an element or a page before failing the test.
const WAIT: Duration = Duration::from_secs(20);

/// How a browser starts.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub javascript: bool,
    /// Whether [`Browser::screenshot`] writes files.
    pub screenshots: bool,
}

impl Options {
    /// JavaScript on; screenshots from the SQLite variant only.
    pub fn for_db(db: Db) -> Options {
        Options {
            javascript: true,
            screenshots: db == Db::Sqlite,
        }
    }

    pub fn without_javascript(self) -> Options {
        Options {
            javascript: false,
            ..self
        }
    }

    /// For tests whose pages are already shot elsewhere.
    pub fn no_screenshots(self) -> Options {
        Options {
            screenshots: false,
            ..self
        }
    }
}

pub struct Browser {
    client: Client,
    base: String,
    screenshots: bool,
    /// Declared after `client`, so dropped after it: ends the session, kills chromedriver.
    driver: Driver,
}

/// A running chromedriver and the temp dir holding its log and Chromium's profile.
struct Driver {
    child: Child,
    port: u16,
    session_id: Option<String>,
    dir: tempfile::TempDir,
}

impl Browser {
    /// A browser pointed at `app`; `None` = skip (no Chromium here and not required).
    pub async fn start(app: &TestApp, options: Options) -> Option<Browser> {
        let driver_bin = match find_tools() {
            Ok(bin) => bin,
            Err(e) if super::pg::required() => panic!(
                "browser tests are required (CI / HALLPASS_REQUIRE_POSTGRES) but cannot run: {e}"
            ),
            Err(e) => {
                eprintln!(
                    "\n!!!!! SKIPPING a browser test: {e}\n!!!!! Install them with: apt-get install chromium chromium-driver\n"
                );
                return None;
            }
        };
        Some(Self::launch(&driver_bin, app, options).await)
    }

    async fn launch(driver_bin: &Path, app: &TestApp, options: Options) -> Browser {
        // The free port is only free until someone else binds it: try a few.
        let mut attempt = 1;
        let mut driver = loop {
            let mut driver = Driver::spawn(driver_bin);
            match driver.wait_until_ready().await {
                Ok(()) => break driver,
                Err(e) if attempt < 3 => eprintln!("chromedriver failed, retrying: {e}"),
                Err(e) => panic!("{e}"),
            }
            attempt += 1;
        };
        // From here on, a failure (panic) drops `driver`, which kills chromedriver.
        let client = driver.new_session(options).await;
        driver.session_id = client.session_id().await.unwrap();
        Browser {
            client,
            base: format!("http://{}", app.addr),
            screenshots: options.screenshots,
            driver,
        }
    }

    /// Opens the app at `host` (e.g. `localhost`: WebAuthn binds passkeys to a domain name,
    /// never an IP address) instead of its loopback address, on the same port.
    pub fn at_host(mut self, host: &str) -> Browser {
        let port = self.base.rsplit(':').next().unwrap_or_default().to_owned();
        self.base = format!("http://{host}:{port}");
        self
    }

    /// Calls a WebDriver extension command of this session (`method`, path after
    /// `/session/{id}`), such as the WebAuthn virtual authenticator's (W3C WebAuthn §11:
    /// `POST /webauthn/authenticator`…), which fantoccini does not speak; returns `value`.
    pub async fn webdriver(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let id = self.driver.session_id.as_deref().unwrap();
        let url = format!("http://127.0.0.1:{}/session/{id}{path}", self.driver.port);
        let http = reqwest::Client::new();
        let req = match method {
            "GET" => http.get(&url),
            "DELETE" => http.delete(&url),
            _ => http.post(&url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body["value"].clone()
    }

    /// Opens a path of the app (`/login`), like typing it into the address bar.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current path and query (`/login?next=%2Faccount`).
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the browser shows `path` (path and query, exactly).
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            if now == path {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected to land on {path}, still on {now}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the element `css` to exist on the page.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on {} within {WAIT:?}: {e}", self.base))
    }

    /// Whether `css` is on the page right now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// Replaces the content of the input `css` with `value`, typing it key by key.
    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Presses a key (`fantoccini::key::Key::Tab`…) on whatever has the focus.
    pub async fn press(&self, key: fantoccini::key::Key) {
        let focused = self.client.active_element().await.unwrap();
        focused
            .send_keys(&String::from(char::from(key)))
            .await
            .unwrap();
    }

    /// Moves the mouse over the element `css` (its `:hover` styles apply).
    pub async fn hover(&self, css: &str) {
        use fantoccini::actions::{InputSource, MouseActions, PointerAction};
        let element = self.find(css).await;
        let moves = MouseActions::new("mouse".to_owned()).then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        self.client.perform_actions(moves).await.unwrap();
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// The visible text of the element `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The current value of the form field `css` (what the person sees in it).
    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Lets the page read and write the clipboard (as a person allowing it would).
    pub async fn grant_clipboard(&self, app: &TestApp) {
        self.cdp(
            "Browser.grantPermissions",
            json!({ "origin": format!("http://{}", app.addr),
                    "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"] }),
        )
        .await;
    }

    /// What the clipboard holds (see [`Browser::grant_clipboard`]).
    pub async fn clipboard(&self) -> String {
        let text = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 navigator.clipboard.readText().then(done, e => done('clipboard: ' + e));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("reading the clipboard: {e}"));
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `script` (a function body) returns `true`; `what` names it in the failure.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what} on {}",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The HTML of the page as it is now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Waits for a JavaScript dialog (`window.confirm`…), accepts it and returns its text.
    pub async fn accept_dialog(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            // Only the alert commands until it is open: chromedriver would dismiss an open
            // dialog on any other command.
            if let Ok(text) = self.client.get_alert_text().await {
                self.client.accept_alert().await.unwrap();
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no dialog opened within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a Chrome DevTools Protocol command through chromedriver's `goog/cdp/execute`
    /// (fantoccini speaks only WebDriver).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let id = self.driver.session_id.as_deref().unwrap();
        let url = format!(
            "http://127.0.0.1:{}/session/{id}/goog/cdp/execute",
            self.driver.port
        );
        let r = reqwest::Client::new()
            .post(&url)
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"));
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "CDP {cmd}: {status} {body}");
        body["value"].clone()
    }

    /// Emulates the light or dark colour scheme of the operating system (and reduced motion,
    /// so no transition is caught half-way), and checks that the page sees it.
    pub async fn color_scheme(&self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [
                { "name": "prefers-color-scheme", "value": scheme },
                { "name": "prefers-reduced-motion", "value": "reduce" },
            ]}),
        )
        .await;
        let seen = self
            .js("return matchMedia('(prefers-color-scheme: dark)').matches;")
            .await;
        assert_eq!(seen, Value::Bool(dark), "emulated {scheme} colour scheme");
    }

    /// Checks the page as it is now and writes its pictures: at 1280×800 it must fit the
    /// width and pass axe-core (no serious or critical finding) in the light and the dark
    /// colour scheme; at a phone's 390×844 it must fit the width too. The files are
    /// `docs/screenshots/<name>.png`, `<name>-dark.png` and `<name>-phone.png`. Only
    /// browsers that take screenshots check (see [`Options::screenshots`]): every screen
    /// shot is checked, once. The page is left in the light scheme at the desktop size.
    pub async fn screenshot(&self, name: &str) {
        if !self.screenshots {
            return;
        }
        let background = "return getComputedStyle(document.body).backgroundColor;";
        self.color_scheme(false).await;
        let light = self.js(background).await;
        self.settle(name).await;
        self.assert_fits(name, DESKTOP).await;
        self.assert_accessible(name, "light").await;
        self.shoot(name, DESKTOP).await;
        self.color_scheme(true).await;
        let dark = self.js(background).await;
        assert_ne!(light, dark, "{name}: the dark stylesheet did not apply");
        self.settle(name).await;
        self.assert_accessible(name, "dark").await;
        self.shoot(&format!("{name}-dark"), DESKTOP).await;
        self.color_scheme(false).await;
        self.viewport(PHONE).await;
        self.settle(name).await;
        self.assert_fits(name, PHONE).await;
        self.shoot(&format!("{name}-phone"), PHONE).await;
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
        self.settle(name).await;
    }

    /// Emulates a screen of `size` (a phone is emulated as a mobile device).
    async fn viewport(&self, size: Viewport) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": size.width, "height": size.height, "deviceScaleFactor": 1,
                    "mobile": size.mobile }),
        )
        .await;
    }

    /// Lets transitions (the focus ring of an autofocused field) and layout finish.
    async fn settle(&self, name: &str) {
        self.client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 Promise.all(document.getAnimations().map(x => x.finished))
                     .then(() => requestAnimationFrame(() => requestAnimationFrame(done)));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: waiting for transitions: {e}"));
    }

    /// No horizontal scrolling: neither the page nor any element that is laid out reaches
    /// past the viewport's width, also inside a box that scrolls sideways (a table cut off
    /// at the right of its scroll box hides its actions just the same).
    pub async fn assert_fits(&self, name: &str, size: Viewport) {
        let found = self
            .js("const w = document.documentElement.clientWidth;
                 const inner = innerWidth;
                 const out = [];
                 if (document.documentElement.scrollWidth > w)
                     out.push(`the page is ${document.documentElement.scrollWidth}px wide`);
                 for (const el of document.body.querySelectorAll('*')) {
                     const r = el.getBoundingClientRect();
                     if (r.width === 0 || r.height === 0) continue;
                     if (r.right > w + 1 || r.left < -1) {
                         const id = el.id ? '#' + el.id : '';
                         const cls = typeof el.className === 'string' && el.className
                             ? '.' + el.className.trim().split(/\\s+/).join('.') : '';
                         out.push(`${el.tagName.toLowerCase()}${id}${cls} spans ${Math.round(r.left)}..${Math.round(r.right)}px`);
                     }
                 }
                 return [inner, out.slice(0, 12)];")
            .await;
        let width = found[0].as_i64().unwrap_or_default();
        assert_eq!(
            width,
            i64::from(size.width),
            "{name}: the viewport is not {}px wide",
            size.width
        );
        let problems = found[1].as_array().cloned().unwrap_or_default();
        assert!(
            problems.is_empty(),
            "{name} does not fit {}×{}: {}",
            size.width,
            size.height,
            serde_json::to_string_pretty(&problems).unwrap()
        );
    }

    /// Runs axe-core (vendored in `support/axe/`) on the page and fails on any serious or
    /// critical finding, listing each with the elements concerned.
    pub async fn assert_accessible(&self, name: &str, scheme: &str) {
        let present = self.js("return typeof axe === 'object';").await;
        if present != Value::Bool(true) {
            // Injected through WebDriver, so the page's Content-Security-Policy (which
            // allows no inline or foreign script) does not apply to it.
            self.client
                .execute(&format!("{AXE}\nreturn true;"), vec![])
                .await
                .unwrap_or_else(|e| panic!("{name}: cannot inject axe-core: {e}"));
        }
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                     r.violations
                         .filter(v => v.impact === 'serious' || v.impact === 'critical')
                         .map(v => `${v.impact} ${v.id}: ${v.help}\\n` + v.nodes
                             .map(n => `    ${n.target.join(' ')}: ${n.failureSummary.replace(/\\n/g, ' ')}`)
                             .join('\\n'))
                 ), e => done([`axe failed: ${e}`]));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: axe-core: {e}"));
        let list: Vec<String> = serde_json::from_value(violations).unwrap_or_default();
        assert!(
            list.is_empty(),
            "{name} ({scheme}): axe-core found {} serious or critical problem(s):\n{}",
            list.len(),
            list.join("\n")
        );
    }

    async fn shoot(&self, name: &str, size: Viewport) {
        // The same page must give the same image on every run: hide the blinking text caret
        // (an inline style set from script is not subject to the page's CSP).
        self.js("const a = document.activeElement; if (a && a.style) a.style.caretColor = 'transparent';")
            .await;
        // The whole page, not just the window: for a long page, grow the viewport to the
        // page's height for the shot (the width stays, so the layout does not change).
        let page = self
            .js("return document.documentElement.scrollHeight;")
            .await
            .as_i64()
            .unwrap_or_default();
        let tall = page > i64::from(size.height);
        if tall {
            self.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": size.width, "height": page, "deviceScaleFactor": 1,
                        "mobile": size.mobile }),
            )
            .await;
        }
        let png = self.client.screenshot().await;
        if tall {
            self.viewport(size).await;
        }
        let png = png.unwrap();
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        // Leave identical images alone: no needless change of the file's time.
        if std::fs::read(&path).is_ok_and(|old| old == png) {
            return;
        }
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// The size of a screen the pages must fit.
#[derive(Debug, Clone, Copy)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
    pub mobile: bool,
}

/// A laptop (the browser's window).
pub const DESKTOP: Viewport = Viewport {
    width: 1280,
    height: 800,
    mobile: false,
};

/// A phone (an iPhone 12–15's CSS pixels).
pub const PHONE: Viewport = Viewport {
    width: 390,
    height: 844,
    mobile: true,
};

/// axe-core, the accessibility checker, as published on npm (see `support/axe/VENDORED.md`).
const AXE: &str = include_str!("axe/axe.min.js");

impl Driver {
    /// Starts chromedriver on a free loopback port, logging into its temp dir.
    fn spawn(driver_bin: &Path) -> Driver {
        let dir = tempfile::Builder::new()
            .prefix("hallpass-chromium-")
            .tempdir()
            .unwrap();
        let port = super::free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).unwrap();
        let mut cmd = Command::new(driver_bin);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // Its own process group, so that Chromium can be killed with it (see `Drop`).
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        Driver {
            child,
            port,
            session_id: None,
            dir,
        }
    }

    /// Polls chromedriver's `/status` until it reports ready.
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let status = format!("http://127.0.0.1:{}/status", self.port);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(&status).send().await
                && let Ok(body) = r.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return Ok(());
            }
            if let Ok(Some(exit)) = self.child.try_wait() {
                return Err(format!(
                    "chromedriver on port {} exited ({exit}):\n{}",
                    self.port,
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "chromedriver did not answer on port {} within {WAIT:?}:\n{}",
                    self.port,
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts Chromium: a WebDriver session with our flags and a fresh profile.
    async fn new_session(&self, options: Options) -> Client {
        let user_data = self.dir.path().join("profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", user_data.display()),
        ];
        let mut chrome = json!({ "binary": CHROMIUM });
        if !options.javascript {
            // Both switches: the content setting blocks page scripts, the Blink setting
            // makes the page itself behave as in a browser with JavaScript off.
            chrome["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
            args.push("--blink-settings=scriptEnabled=false".to_owned());
        }
        chrome["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".to_owned(), json!("chrome"));
        caps.insert("goog:chromeOptions".to_owned(), chrome);
        let webdriver = format!("http://127.0.0.1:{}", self.port);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Chromium through chromedriver: {e}\n{}",
                    self.log()
                )
            })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // End the WebDriver session first, so that chromedriver closes Chromium cleanly (the
        // fantoccini client would do it in a background task that may never run again).
        if let Some(id) = &self.session_id {
            delete_session(self.port, id);
        }
        // Then kill chromedriver's whole process group: chromedriver and anything it left.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `docs/screenshots` in the source tree.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
}

/// chromedriver's path, or why the browser tests cannot run here.
fn find_tools() -> Result<PathBuf, String> {
    if !Path::new(CHROMIUM).exists() {
        return Err(format!("{CHROMIUM} not found"));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
        .ok_or_else(|| "chromedriver not found on PATH".to_owned())
}

/// `DELETE /session/<id>` over a plain blocking socket (this runs in `Drop`).
fn delete_session(port: u16, id: &str) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver answers once Chromium has quit. It keeps the connection open despite
    // `Connection: close`, so stop at the end of the headers rather than at EOF.
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
}
