//! Host names for tests of a real multi-host setup (Hallpass at `auth.example.test`, apps at
//! `app.example.test`, the cookie shared on `example.test`): a client that resolves every
//! name below `example.test` to 127.0.0.1 (the port comes with each URL) and keeps its
//! cookies in a jar the test can look into.

use std::sync::Arc;

use hallpass::config::Config;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;

pub const DOMAIN: &str = "example.test";
pub const AUTH: &str = "auth.example.test";
pub const APP: &str = "app.example.test";
pub const OTHER_APP: &str = "media.example.test";

/// A browser: cookies kept (in `jar`), redirects not followed (tests look at each hop).
pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Browser {
    pub fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .resolve(AUTH, loopback)
            .resolve(APP, loopback)
            .resolve(OTHER_APP, loopback)
            .resolve(DOMAIN, loopback)
            .build()
            .unwrap();
        Browser { http, jar }
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Whether it would send a session cookie to `url`.
    pub fn has_session_for(&self, url: &str) -> bool {
        self.cookies_for(url).contains("hallpass_session=")
    }
}

/// Configures Hallpass to listen on `port` (picked beforehand with `free_port`) and be
/// reached as `http://auth.example.test:<public_port>` (itself, or a proxy in front).
pub fn at(c: &mut Config, port: u16, public_port: u16) {
    c.server.bind = format!("127.0.0.1:{port}").parse().unwrap();
    c.server.public_url = Some(format!("http://{AUTH}:{public_port}").parse().unwrap());
}

/// `at` and `session.cookie_domain = "example.test"`.
pub fn shared(c: &mut Config, port: u16, public_port: u16) {
    at(c, port, public_port);
    c.session.cookie_domain = Some(DOMAIN.parse().unwrap());
}

/// The `Location` of a redirect (fails the test when there is none).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_else(|| panic!("no Location on a {} answer", r.status()))
        .to_owned()
}

/// Every `Set-Cookie` of a response naming the session cookie.
pub fn session_set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("hallpass_session="))
        .map(str::to_owned)
        .collect()
}
