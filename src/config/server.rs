//! The `[server]`, `[database]` and `[log]` sections: how the process listens, where its data
//! lives and what it logs.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{HumanDuration, PublicUrl, TrustedProxies};
use crate::db::DatabaseUrl;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// The URL people type in their browser, e.g. `https://auth.example.com`.
    pub public_url: Option<PublicUrl>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Where Hallpass keeps files that are not in the database (the server secret).
    pub data_dir: PathBuf,
    /// Reverse proxies whose forwarding headers are believed: `X-Forwarded-For` for the
    /// client address (logs, audit, rate limits), `X-Forwarded-Proto`/`-Host` for the SSO
    /// redirect URI when `public_url` is not set. Default: nobody's.
    pub trusted_proxies: TrustedProxies,
    /// Host names (besides `public_url`'s host, `localhost` and IP addresses) that requests
    /// may name in `Host`. Anything else is refused: a DNS-rebinding page reaches this server
    /// under a name of the attacker's.
    pub allowed_hosts: Vec<String>,
    /// Allow `server.trusted_proxies` and `auth.proxy.trusted_proxies` to list addresses
    /// outside private, loopback, link-local (and IPv6 unique-local) space. Off: such a list
    /// is refused at start-up, because trusting a public range lets strangers choose their
    /// logged address or, for `auth.proxy`, their identity.
    pub allow_public_trust: bool,
    /// How long a client has to send a whole request head (and, once Hallpass reads it, the
    /// body) before its connection is closed: slow or half-open clients do not hold a socket.
    pub header_timeout: HumanDuration,
    /// How long an idle keep-alive connection waits for its next request. Longer than nginx's
    /// upstream `keepalive_timeout` (60 s), so a proxy closes its idle connections first and
    /// never sends a request on one Hallpass is closing.
    pub keep_alive_timeout: HumanDuration,
    /// Most connections open at once; unset = derived from the open-file limit (see
    /// `serve::ConnectionLimits`). Further clients wait in the listen queue.
    pub max_connections: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8700)),
            public_url: None,
            body_limit: 64 * 1024,
            data_dir: PathBuf::from("./data"),
            trusted_proxies: TrustedProxies::default(),
            allowed_hosts: Vec::new(),
            allow_public_trust: false,
            header_timeout: HumanDuration::secs(10),
            keep_alive_timeout: HumanDuration::secs(75),
            max_connections: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`.
    #[serde(
        deserialize_with = "deserialize_db_url",
        serialize_with = "serialize_db_url"
    )]
    pub url: DatabaseUrl,
    /// A file holding the whole URL (a Docker secret); wins over `url`. From the environment:
    /// `HALLPASS_DATABASE__URL_FILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// A file holding the PostgreSQL password, put into the URL (which then need not carry
    /// one); wins over a password written in the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long to wait for a connection before giving up.
    pub connect_timeout: HumanDuration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: DatabaseUrl::parse("sqlite://./data/hallpass.db")
                .unwrap_or_else(|_| unreachable_default()),
            url_file: None,
            password_file: None,
            max_connections: 8,
            connect_timeout: HumanDuration::secs(10),
        }
    }
}

#[expect(
    clippy::panic,
    reason = "the built-in default URL is a constant that parses"
)]
fn unreachable_default() -> DatabaseUrl {
    panic!("built-in database URL does not parse")
}

impl DatabaseConfig {
    /// Reads `url_file` and `password_file` into `url` (once, at load). The file wins over the
    /// value, as for every secret that can come from a file.
    pub fn read_secret_files(&mut self) -> Result<(), String> {
        if let Some(path) = &self.url_file {
            let raw = crate::secret::read_secret_file("database.url_file", path)?;
            self.url = DatabaseUrl::parse(&raw)
                .map_err(|m| format!("database.url_file: {}: {m}", path.display()))?;
        }
        if let Some(path) = &self.password_file {
            let password = crate::secret::read_secret_file("database.password_file", path)?;
            let mut url = url::Url::parse(self.url.expose())
                .ok()
                .filter(|_| self.url.backend() == crate::db::Backend::Postgres)
                .ok_or("database.password_file: database.url is not a postgres:// URL")?;
            // `set_password` percent-encodes, so any character may be in the password.
            url.set_password(Some(&password))
                .map_err(|()| "database.password_file: database.url has no host to sign in to")?;
            self.url = DatabaseUrl::parse(url.as_str())
                .map_err(|m| format!("database.password_file: {m}"))?;
        }
        Ok(())
    }
}

fn deserialize_db_url<'de, D: Deserializer<'de>>(d: D) -> Result<DatabaseUrl, D::Error> {
    let raw = String::deserialize(d)?;
    DatabaseUrl::parse(&raw).map_err(serde::de::Error::custom)
}

fn serialize_db_url<S: Serializer>(url: &DatabaseUrl, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&url.redacted())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `hallpass=debug,tower_http=info`; `RUST_LOG` wins.
    pub level: String,
    /// `text` (for people) or `json` (one object a line, for Loki and friends).
    pub format: LogFormat,
    /// One line per request (method, route, status, latency, client address, request id) at
    /// `info`; off by default, when these lines are at `debug` (a proxy in front usually
    /// keeps an access log already, and a line per request costs on the hot path).
    pub requests: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
            requests: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_url_or_its_password_can_come_from_a_file() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text)
                .map(|()| p)
                .map_err(|e| e.to_string())
        };
        let mut db = DatabaseConfig {
            url: DatabaseUrl::parse("postgres://hp:in-the-url@db.internal:5432/hallpass")?,
            password_file: Some(write("pw", "p@ss:/w rd\n")?),
            ..DatabaseConfig::default()
        };
        db.read_secret_files()?;
        assert_eq!(
            db.url.expose(),
            "postgres://hp:p%40ss%3A%2Fw%20rd@db.internal:5432/hallpass"
        );
        assert!(!db.url.to_string().contains("w%20rd"), "{}", db.url);
        // The whole URL from a file, then its password from another.
        let mut db = DatabaseConfig {
            url_file: Some(write("url", "postgres://hp@db.internal/hallpass\n")?),
            password_file: Some(write("pw2", "secret\n")?),
            ..DatabaseConfig::default()
        };
        db.read_secret_files()?;
        assert_eq!(db.url.expose(), "postgres://hp:secret@db.internal/hallpass");
        // SQLite has no password; a missing file names the key and the path.
        let mut db = DatabaseConfig {
            password_file: Some(write("pw3", "secret")?),
            ..DatabaseConfig::default()
        };
        let e = db.read_secret_files().err().unwrap_or_default();
        assert!(e.contains("not a postgres:// URL"), "{e}");
        let mut db = DatabaseConfig {
            url_file: Some(dir.path().join("missing")),
            ..DatabaseConfig::default()
        };
        let e = db.read_secret_files().err().unwrap_or_default();
        assert!(
            e.starts_with("database.url_file: cannot read") && e.contains("missing"),
            "{e}"
        );
        Ok(())
    }
}
