//! Typed configuration: built-in defaults < `hallpass.toml` < `HALLPASS_<SECTION>__<KEY>`.
//!
//! One-shot bootstrap variables (`HALLPASS_ADMIN_*`) are deliberately not part of this: they
//! are read from the environment by `bootstrap` and never stored or printed.
//!
//! The sections live beside this file, by what they configure: `server` (listening, the
//! database, logging), `auth` (sessions, passwords, sign-in methods and their limits),
//! `trust` (which proxies are believed) and `values` (the value types they share). Their
//! types are re-exported here, so `crate::config::X` names every one of them.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

mod apps;
mod auth;
mod backup;
mod metrics;
mod server;
mod trust;
mod values;

pub use apps::{AppConfig, ForwardConfig};
pub use auth::{
    AuthConfig, CookieDomain, OidcConfig, PasswordConfig, ProxyConfig, RateLimitConfig,
    SessionConfig,
};
pub use backup::BackupConfig;
pub use metrics::{MetricsConfig, MetricsToken};
pub use server::{DatabaseConfig, LogConfig, LogFormat, ServerConfig};
use trust::{TrustKey, check_trust_scope};
pub use trust::{TrustedProxies, canonical_ip, trusted_by};
pub use values::{CookieSecure, HumanDuration, PublicUrl};

/// The whole configuration, passed around inside `AppState`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub session: SessionConfig,
    pub password: PasswordConfig,
    pub log: LogConfig,
    pub auth: AuthConfig,
    /// Scheduled backups and the browser restore (`[backup]`).
    pub backup: BackupConfig,
    /// `GET /metrics` and who may scrape it (`[metrics]`).
    pub metrics: MetricsConfig,
    /// Apps declared in the file (`[[apps]]`), read-only in the UI.
    pub apps: Vec<AppConfig>,
    /// Providers, override and first-admin pin from `HALLPASS_OIDC_*`, `HALLPASS_SSO_*` and
    /// `HALLPASS_BOOTSTRAP_ADMIN` (environment only; see `sso_env`).
    #[serde(skip)]
    pub sso: crate::sso_env::SsoEnv,
    /// The dev bypass and the break-glass admin (`HALLPASS_AUTH_BYPASS`,
    /// `HALLPASS_ADMIN_KEY`…; environment only).
    #[serde(skip)]
    pub env_auth: crate::env_auth::EnvAuth,
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then the TOML file (explicit path, or `./hallpass.toml` if present),
    /// then `HALLPASS_<SECTION>__<KEY>` environment variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::MissingFile(p.to_owned())),
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            // `./hallpass.toml` is optional.
            None if Path::new("hallpass.toml").exists() => {
                figment = figment.merge(Toml::file_exact("hallpass.toml"));
            }
            None => {}
        }
        // Only nested names (with `__`) are configuration; HALLPASS_ADMIN_* and friends are not.
        figment = figment.merge(
            Env::prefixed("HALLPASS_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        config
            .database
            .read_secret_files()
            .map_err(ConfigError::Invalid)?;
        config
            .metrics
            .read_secret_files()
            .map_err(ConfigError::Invalid)?;
        config.sso = crate::sso_env::SsoEnv::from_env(|k| std::env::var(k).ok())
            .map_err(ConfigError::Invalid)?;
        config.env_auth = crate::env_auth::EnvAuth::from_env(|k| std::env::var(k).ok())
            .map_err(ConfigError::Invalid)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let mut names = std::collections::HashSet::new();
        for app in &self.apps {
            app.check().map_err(ConfigError::Invalid)?;
            if !names.insert(app.name.trim().to_lowercase()) {
                return Err(ConfigError::Invalid(format!(
                    "apps: two apps are named {:?}",
                    app.name
                )));
            }
        }
        self.backup.check().map_err(ConfigError::Invalid)?;
        self.metrics.check().map_err(ConfigError::Invalid)?;
        if self.database.max_connections == 0 {
            return bad("database.max_connections: must be at least 1");
        }
        if self.server.body_limit < 1024 {
            return bad("server.body_limit: must be at least 1024 bytes");
        }
        if self.server.header_timeout.get().is_zero() {
            return bad("server.header_timeout: must be longer than 0s");
        }
        if self.server.keep_alive_timeout.get().is_zero() {
            return bad("server.keep_alive_timeout: must be longer than 0s");
        }
        if self.server.max_connections == Some(0) {
            return bad("server.max_connections: must be at least 1");
        }
        let p = &self.password;
        if !(1..=16).contains(&p.argon2_parallelism) {
            return bad("password.argon2_parallelism: must be between 1 and 16");
        }
        if p.argon2_iterations == 0 || p.argon2_iterations > 100 {
            return bad("password.argon2_iterations: must be between 1 and 100");
        }
        if p.argon2_memory_kib < 8 * p.argon2_parallelism || p.argon2_memory_kib > 4 * 1024 * 1024 {
            return bad(
                "password.argon2_memory_kib: must be at least 8 × argon2_parallelism and at most 4194304 (4 GiB)",
            );
        }
        let r = &self.auth.rate_limit;
        if r.window.get().is_zero() {
            return bad("auth.rate_limit.window: must be longer than 0s");
        }
        if r.max_failures_per_account == 0 {
            return bad("auth.rate_limit.max_failures_per_account: must be at least 1");
        }
        if r.max_failures_per_ip == 0 {
            return bad("auth.rate_limit.max_failures_per_ip: must be at least 1");
        }
        if let TrustedProxies::List(nets) = &self.server.trusted_proxies {
            check_trust_scope(TrustKey::Forwarding, nets, self.server.allow_public_trust)
                .map_err(ConfigError::Invalid)?;
        }
        self.auth
            .proxy
            .validate(self.server.allow_public_trust)
            .map_err(ConfigError::Invalid)?;
        for h in &self.server.allowed_hosts {
            if !crate::web::host::is_host_name(h) {
                return Err(ConfigError::Invalid(format!(
                    "server.allowed_hosts: \"{h}\" is not a host name (write it as auth.example.com: no scheme, port, path or wildcard)"
                )));
            }
        }
        if self.session.idle_timeout.get().is_zero() {
            return bad("session.idle_timeout: must be longer than 0s");
        }
        if self.session.max_lifetime.get().is_zero() {
            return bad("session.max_lifetime: must be longer than 0s");
        }
        if self.session.purge_interval.get().is_zero() {
            return bad("session.purge_interval: must be longer than 0s");
        }
        self.session
            .validate_domain(self.server.public_url.as_ref())
            .map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Whether `ip`, a TCP peer address, is a trusted proxy under `server.trusted_proxies`
    /// (any peer with `true` or a hop count of at least 1).
    pub fn is_trusted_proxy(&self, ip: std::net::IpAddr) -> bool {
        self.server.trusted_proxies.trusts_hop(ip, 0)
    }

    /// Whether the session cookie gets the `Secure` attribute.
    pub fn cookie_secure(&self) -> bool {
        match self.session.cookie_secure {
            CookieSecure::Always => true,
            CookieSecure::Never => false,
            CookieSecure::Auto => self
                .server
                .public_url
                .as_ref()
                .is_some_and(PublicUrl::is_https),
        }
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut out =
            toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        out.push_str(&self.sso.describe());
        out
    }
}

/// figment's errors name the key and the source; drop its internal "default." profile prefix.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| lowercase_key(&e.to_string().replace("\"default.", "\"")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// figment spells a key set from the environment in the variable's upper case; every key of
/// the configuration is lower case, and messages name it the way the README does.
fn lowercase_key(message: &str) -> String {
    const MARK: &str = "for key \"";
    let Some(start) = message.find(MARK).map(|i| i + MARK.len()) else {
        return message.to_owned();
    };
    let end = message[start..]
        .find('"')
        .map_or(message.len(), |i| start + i);
    format!(
        "{}{}{}",
        &message[..start],
        message[start..end].to_lowercase(),
        &message[end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn connection_limits_read_and_validate() -> Result<(), String> {
        let c: Config = Figment::new()
            .merge(Toml::string(
                "[server]\nheader_timeout = \"5s\"\nkeep_alive_timeout = \"2m\"\nmax_connections = 300",
            ))
            .extract()
            .map_err(describe)?;
        assert_eq!(c.server.header_timeout.get(), Duration::from_secs(5));
        assert_eq!(c.server.keep_alive_timeout.get(), Duration::from_secs(120));
        assert_eq!(c.server.max_connections, Some(300));
        let d = Config::default();
        assert_eq!(d.server.header_timeout.get(), Duration::from_secs(10));
        assert_eq!(d.server.keep_alive_timeout.get(), Duration::from_secs(75));
        assert_eq!(
            d.server.max_connections, None,
            "derived from the file limit"
        );
        for (key, tweak) in [
            (
                "server.header_timeout",
                (|c: &mut Config| c.server.header_timeout = HumanDuration::secs(0))
                    as fn(&mut Config),
            ),
            ("server.keep_alive_timeout", |c| {
                c.server.keep_alive_timeout = HumanDuration::secs(0);
            }),
            ("server.max_connections", |c| {
                c.server.max_connections = Some(0);
            }),
        ] {
            let mut c = Config::default();
            tweak(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid(m)) => assert!(m.contains(key), "{m}"),
                other => return Err(format!("{key}: {other:?}")),
            }
        }
        Ok(())
    }

    #[test]
    fn rate_limit_values_are_checked() {
        let mut c = Config::default();
        c.auth.rate_limit.max_failures_per_ip = 0;
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("auth.rate_limit.max_failures_per_ip"), "{e}");
        let mut c = Config::default();
        c.auth.rate_limit.window = HumanDuration::secs(0);
        let e = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("auth.rate_limit.window"), "{e}");
    }
}
