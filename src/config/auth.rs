//! The sections about signing in: `[session]`, `[password]` and `[auth]` (brute-force
//! limits, forward-auth by a trusted proxy, checks on OpenID providers).

use serde::{Deserialize, Serialize};

use super::trust::{TrustKey, check_trust_scope, parse_net, trusted_by};
use super::{CookieSecure, HumanDuration};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// `auto` (Secure when `server.public_url` is https), `always` or `never`.
    pub cookie_secure: CookieSecure,
    /// A session unused for this long ends.
    pub idle_timeout: HumanDuration,
    /// A session ends this long after sign-in, however busy.
    pub max_lifetime: HumanDuration,
    /// How often expired sessions are deleted.
    pub purge_interval: HumanDuration,
    /// The parent domain the session cookie is shared with (`Domain=`), so that a session
    /// signed in at `auth.example.com` reaches `app.example.com` for forward-auth. Unset: the
    /// cookie stays with the host that set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<CookieDomain>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_secure: CookieSecure::Auto,
            idle_timeout: HumanDuration::secs(7 * 86_400),
            max_lifetime: HumanDuration::secs(30 * 86_400),
            purge_interval: HumanDuration::secs(600),
            cookie_domain: None,
        }
    }
}

/// `session.cookie_domain`, normalised the way browsers compare it: lower case, punycode, no
/// leading or trailing dot (`.Example.COM` and `example.com` are the same cookie domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieDomain(String);

impl CookieDomain {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CookieDomain {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let bare = raw.trim().trim_start_matches('.').trim_end_matches('.');
        let not_a_domain = || {
            format!(
                "\"{raw}\" is not a domain name (write it as example.com: no scheme, port, path or wildcard)"
            )
        };
        // `Host::parse` lower-cases and punycodes (IDN), as browsers do with `Domain=`.
        let name = match url::Host::parse(bare) {
            Ok(url::Host::Domain(name)) => name,
            Ok(_) => {
                return Err(format!(
                    "\"{raw}\" is an address: a cookie domain must be a name"
                ));
            }
            Err(_) => return Err(not_a_domain()),
        };
        // A cookie cannot be shared across addresses, and a name ending in digits is one.
        let numeric_tld = name
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if numeric_tld || !crate::web::host::is_host_name(&name) {
            return Err(not_a_domain());
        }
        Ok(Self(name))
    }
}

impl<'de> Deserialize<'de> for CookieDomain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for CookieDomain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl SessionConfig {
    /// `session.cookie_domain` must contain the host people sign in at (`server.public_url`):
    /// a browser refuses a cookie whose `Domain` does not, so sign-in would silently fail.
    pub(super) fn validate_domain(
        &self,
        public_url: Option<&super::PublicUrl>,
    ) -> Result<(), String> {
        let Some(domain) = &self.cookie_domain else {
            return Ok(());
        };
        let d = domain.as_str();
        let Some(public) = public_url else {
            return Err(format!(
                "session.cookie_domain: \"{d}\" needs server.public_url, the address people sign in at (e.g. https://auth.{d}), and its host must be {d} or inside it"
            ));
        };
        let host = public.host();
        if host.parse::<std::net::IpAddr>().is_ok()
            || host.starts_with('[')
            || !crate::domain::return_to::within(&host.to_ascii_lowercase(), d)
        {
            return Err(format!(
                "session.cookie_domain: server.public_url's host \"{host}\" is not {d} or inside it, so browsers would refuse the cookie; set server.public_url to an address under {d} (e.g. https://auth.{d}) or fix the cookie domain"
            ));
        }
        Ok(())
    }
}

/// How people may sign in, besides passwords and SSO providers.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Brute-force limits on sign-in and other secret-checking endpoints.
    pub rate_limit: RateLimitConfig,
    /// Sign-in by identity headers from an authenticating reverse proxy.
    pub proxy: ProxyConfig,
    /// Checks on what OpenID providers send.
    pub oidc: OidcConfig,
    /// Forward-auth for other apps (`/api/authz/…`).
    pub forward: super::ForwardConfig,
}

/// Checks on ID tokens beyond the openidconnect crate's own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// How far in the future an ID token's `iat` may lie (the provider's clock runs ahead).
    pub clock_skew: HumanDuration,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            clock_skew: HumanDuration::secs(5 * 60),
        }
    }
}

/// Forward-auth: who a trusted reverse proxy says the caller is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    pub enabled: bool,
    /// TCP peers (IPs or CIDR ranges) whose identity headers are believed. Empty: nobody's.
    pub trusted_proxies: Vec<String>,
    /// `authelia`, `authentik` or `oauth2-proxy`: their header names (the admin UI can
    /// switch presets); empty = the header names below.
    pub preset: String,
    pub user_header: String,
    pub email_header: String,
    pub name_header: String,
    pub groups_header: String,
    /// `link` (default), `approve` or `auto`, as for OpenID providers.
    pub policy: String,
    /// Members of these groups are made admins at each sign-in (when any mapping is set).
    pub admin_groups: Vec<String>,
    /// Members of these groups (and none of the admin groups) are made viewers.
    pub viewer_groups: Vec<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            trusted_proxies: Vec::new(),
            preset: String::new(),
            user_header: "Remote-User".into(),
            email_header: "Remote-Email".into(),
            name_header: "Remote-Name".into(),
            groups_header: "Remote-Groups".into(),
            policy: "link".into(),
            admin_groups: Vec::new(),
            viewer_groups: Vec::new(),
        }
    }
}

impl ProxyConfig {
    /// Whether the TCP peer `ip` may vouch for identities.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        trusted_by(self.trusted_proxies.iter().filter_map(|p| parse_net(p)), ip)
    }

    /// The header names from the config (a preset, or the four keys).
    pub fn configured_headers(&self) -> crate::domain::proxy::HeaderNames {
        match crate::domain::proxy::Preset::parse(&self.preset) {
            Some(p) => p.headers(),
            None => crate::domain::proxy::HeaderNames {
                user: self.user_header.clone(),
                email: self.email_header.clone(),
                name: self.name_header.clone(),
                groups: self.groups_header.clone(),
            },
        }
    }

    pub(super) fn validate(&self, allow_public_trust: bool) -> Result<(), String> {
        let mut nets = Vec::with_capacity(self.trusted_proxies.len());
        for p in &self.trusted_proxies {
            let Some(net) = parse_net(p) else {
                return Err(format!(
                    "auth.proxy.trusted_proxies: \"{p}\" is not an IP address or a CIDR range"
                ));
            };
            nets.push(net);
        }
        check_trust_scope(TrustKey::Identity, &nets, allow_public_trust)?;
        if !self.preset.is_empty() && crate::domain::proxy::Preset::parse(&self.preset).is_none() {
            return Err(format!(
                "auth.proxy.preset: \"{}\" is not one of authelia, authentik, oauth2-proxy",
                self.preset
            ));
        }
        crate::domain::sso::Policy::parse(&self.policy)
            .map_err(|m| format!("auth.proxy.policy: {m}"))?;
        for (key, h) in [
            ("user_header", &self.user_header),
            ("email_header", &self.email_header),
            ("name_header", &self.name_header),
            ("groups_header", &self.groups_header),
        ] {
            if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() && !h.is_empty() {
                return Err(format!(
                    "auth.proxy.{key}: \"{h}\" is not a valid header name"
                ));
            }
        }
        if self.enabled && self.configured_headers().user.is_empty() {
            return Err(
                "auth.proxy.user_header: must name a header when auth.proxy.enabled is true".into(),
            );
        }
        if self.enabled && self.trusted_proxies.is_empty() {
            tracing::warn!(
                "auth.proxy.enabled is true but auth.proxy.trusted_proxies is empty: no proxy is trusted, so nobody signs in by header"
            );
        }
        Ok(())
    }
}

/// Failed attempts allowed per window before answers become `429 Too Many Requests`.
/// Counted in this process's memory (see `service::rate_limit`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// How long failures are remembered: a counter's window opens at its first failure and,
    /// once the limit is reached, everything is refused until the window closes.
    pub window: HumanDuration,
    /// Failures per attempted account (case-insensitive) and client IP.
    pub max_failures_per_account: u32,
    /// Failures per client IP, whatever the account.
    pub max_failures_per_ip: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: HumanDuration::secs(15 * 60),
            max_failures_per_account: 10,
            max_failures_per_ip: 100,
        }
    }
}

/// argon2id cost parameters. Changing them re-hashes each password at its owner's next sign-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Most hashes computed at once; 0 means one per CPU core.
    pub max_concurrent_hashes: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        // OWASP's argon2id recommendation: m=19 MiB, t=2, p=1.
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
        }
    }
}
