//! The `[metrics]` section: whether `GET /metrics` exists and who may scrape it.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `GET /metrics` (Prometheus text format; see docs/metrics.md).
///
/// Who may scrape: with `token`, requests must send `Authorization: Bearer <token>`; with
/// `allow`, the client address (resolved under `server.trusted_proxies`) must be in one of
/// its networks; with both, both are required. With neither, the server refuses to start:
/// the tempting default, "loopback only", is wrong behind a reverse proxy on the same host
/// (every request then comes from 127.0.0.1), so the operator writes down the choice.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Off (the default): `/metrics` answers 404 as if it did not exist, and nothing is timed.
    pub enabled: bool,
    /// The bearer token scrapers send.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted",
        deserialize_with = "token"
    )]
    pub token: Option<MetricsToken>,
    /// A file holding the token (a Docker secret); wins over `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// Networks (CIDR ranges or single addresses) whose clients may scrape.
    pub allow: Vec<String>,
}

/// The scrape token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The token, to compare with what a scraper sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

fn redacted<S: Serializer>(_: &Option<MetricsToken>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("[REDACTED]")
}

fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MetricsToken>, D::Error> {
    let raw = String::deserialize(d)?;
    Ok((!raw.is_empty()).then_some(MetricsToken(raw)))
}

/// Shortest token accepted: a scrape token is a password that a script sends, so it can be
/// long and random (`openssl rand -hex 32`).
const MIN_TOKEN: usize = 16;

impl MetricsConfig {
    /// Reads `token_file` into `token` (once, at load).
    pub fn read_secret_files(&mut self) -> Result<(), String> {
        if let Some(path) = &self.token_file {
            let value = crate::secret::read_secret_file("metrics.token_file", path)?;
            self.token = Some(MetricsToken(value));
        }
        Ok(())
    }

    pub fn check(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.token.is_none() && self.allow.is_empty() {
            return Err("metrics.enabled: set metrics.token (or metrics.token_file) or metrics.allow (e.g. [\"127.0.0.1/32\"]) to say who may scrape /metrics".into());
        }
        for a in &self.allow {
            if super::trust::parse_net(a).is_none() {
                return Err(format!(
                    "metrics.allow: \"{a}\" is not an IP address or a CIDR range"
                ));
            }
        }
        if self.token.as_ref().is_some_and(|t| t.0.len() < MIN_TOKEN) {
            return Err(format!(
                "metrics.token: must be at least {MIN_TOKEN} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(())
    }

    /// Whether a client at `ip` is inside `allow` (always, when `allow` is empty).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow.is_empty()
            || super::trusted_by(
                self.allow.iter().filter_map(|a| super::trust::parse_net(a)),
                ip,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_needs_a_token_or_an_allow_list() {
        let mut m = MetricsConfig {
            enabled: true,
            ..Default::default()
        };
        let e = m.check().err().unwrap_or_default();
        assert!(
            e.contains("metrics.token") && e.contains("metrics.allow"),
            "{e}"
        );
        m.allow = vec!["127.0.0.1/33".into()];
        let e = m.check().err().unwrap_or_default();
        assert!(
            e.contains("metrics.allow") && e.contains("127.0.0.1/33"),
            "{e}"
        );
        m.allow = vec!["127.0.0.1".into(), "::1".into()];
        assert!(m.check().is_ok());
        m.token = Some(MetricsToken::new("short".into()));
        let e = m.check().err().unwrap_or_default();
        assert!(e.contains("at least 16"), "{e}");
        m.enabled = false;
        assert!(m.check().is_ok(), "nothing is checked while off");
    }

    #[test]
    fn the_token_can_come_from_a_file_and_is_never_printed() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").map_err(|e| e.to_string())?;
        let mut m: MetricsConfig = toml::from_str(&format!(
            "enabled = true\ntoken = \"from the file is better\"\ntoken_file = \"{}\"\nallow = [\"10.0.0.0/8\"]",
            path.display()
        ))
        .map_err(|e| e.to_string())?;
        m.read_secret_files()?;
        assert_eq!(
            m.token.as_ref().map(MetricsToken::expose),
            Some("0123456789abcdef0123")
        );
        let shown = format!("{m:?} {}", toml::to_string(&m).map_err(|e| e.to_string())?);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(m.allows("10.1.2.3".parse().map_err(|_| "ip")?));
        assert!(!m.allows("192.168.1.1".parse().map_err(|_| "ip")?));
        Ok(())
    }
}
