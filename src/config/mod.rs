//! Typed configuration: built-in defaults < `hallpass.toml` < `HALLPASS_<SECTION>__<KEY>`.
//!
//! One-shot bootstrap variables (`HALLPASS_ADMIN_*`) are deliberately not part of this: they
//! are read from the environment by `bootstrap` and never stored or printed.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::db::DatabaseUrl;

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
    /// Providers, override and first-admin pin from `HALLPASS_OIDC_*`, `HALLPASS_SSO_*` and
    /// `HALLPASS_BOOTSTRAP_ADMIN` (environment only; see `sso_env`).
    #[serde(skip)]
    pub sso: crate::sso_env::SsoEnv,
    /// The dev bypass and the break-glass admin (`HALLPASS_AUTH_BYPASS`,
    /// `HALLPASS_ADMIN_KEY`…; environment only).
    #[serde(skip)]
    pub env_auth: crate::env_auth::EnvAuth,
}

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
pub struct SessionConfig {
    /// `auto` (Secure when `server.public_url` is https), `always` or `never`.
    pub cookie_secure: CookieSecure,
    /// A session unused for this long ends.
    pub idle_timeout: HumanDuration,
    /// A session ends this long after sign-in, however busy.
    pub max_lifetime: HumanDuration,
    /// How often expired sessions are deleted.
    pub purge_interval: HumanDuration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            cookie_secure: CookieSecure::Auto,
            idle_timeout: HumanDuration::secs(7 * 86_400),
            max_lifetime: HumanDuration::secs(30 * 86_400),
            purge_interval: HumanDuration::secs(600),
        }
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

    fn validate(&self, allow_public_trust: bool) -> Result<(), String> {
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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `hallpass=debug,tower_http=info`; `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// When the session cookie carries the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    Auto,
    Always,
    Never,
}

impl<'de> Deserialize<'de> for CookieSecure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Always),
            Raw::Bool(false) => Ok(Self::Never),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(Self::Auto),
                "always" | "true" => Ok(Self::Always),
                "never" | "false" => Ok(Self::Never),
                other => Err(serde::de::Error::custom(format!(
                    "expected auto, always or never, found {other:?}"
                ))),
            },
        }
    }
}

impl Serialize for CookieSecure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Self::Auto => "auto",
            Self::Always => "always",
            Self::Never => "never",
        })
    }
}

/// Who may tell Hallpass the client's address (`server.trusted_proxies`). Trust always starts
/// at the TCP peer; `X-Forwarded-For` is then read right to left, each trusted hop skipped,
/// and the first untrusted address is the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxies {
    /// `true`: every hop is believed, so the left-most address is the client. Safe only when
    /// nothing but the proxy can reach Hallpass's port (a warning is logged at start-up).
    All,
    /// An integer: this many proxies stand in front of Hallpass, whatever their addresses
    /// (`1`: the TCP peer is the proxy; `0`: there is none).
    Hops(u32),
    /// Addresses and CIDR ranges; empty (the default, also `false`) believes nobody.
    List(Vec<ipnet::IpNet>),
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl TrustedProxies {
    /// Whether the hop `depth` steps from Hallpass, with address `addr`, is a trusted proxy.
    /// Depth 0 is the TCP peer, 1 the right-most `X-Forwarded-For` entry, and so on.
    pub fn trusts_hop(&self, addr: std::net::IpAddr, depth: usize) -> bool {
        match self {
            Self::All => true,
            Self::Hops(n) => depth < usize::try_from(*n).unwrap_or(usize::MAX),
            Self::List(nets) => trusted_by(nets.iter().copied(), addr),
        }
    }

    fn parse_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        items
            .into_iter()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                parse_net(s).ok_or_else(|| {
                    format!("\"{s}\" is not an IP address or a CIDR range (e.g. 10.0.0.5 or 172.18.0.0/16); use true, a hop count or a list of addresses")
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::List)
    }
}

/// IPv4 addresses that arrive as IPv6 (`::ffff:10.0.0.5`, from a dual-stack socket) are
/// compared as IPv4.
pub fn canonical_ip(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// A range as trust decisions compare it: an IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`)
/// is the IPv4 range it maps (`10.0.0.0/8`), so it matches the canonical peer addresses.
fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .network()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, ipnet::IpNet::V4),
        other => other,
    }
}

/// The one test of every trust decision (`server.trusted_proxies`,
/// `auth.proxy.trusted_proxies`): is the peer `ip` inside one of `nets`? Both sides are
/// canonical, so a dual-stack listener (`[::]:8700`), which sees an IPv4 proxy as
/// `::ffff:a.b.c.d`, decides exactly as an IPv4 listener does.
pub fn trusted_by(nets: impl IntoIterator<Item = ipnet::IpNet>, ip: std::net::IpAddr) -> bool {
    let ip = canonical_ip(ip);
    nets.into_iter().any(|net| canonical_net(net).contains(&ip))
}

/// Which trusted list is being checked, for the start-up messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrustKey {
    /// `server.trusted_proxies`: who may say what the client's address is.
    Forwarding,
    /// `auth.proxy.trusted_proxies`: who may say who the user is.
    Identity,
}

impl TrustKey {
    fn name(self) -> &'static str {
        match self {
            Self::Forwarding => "server.trusted_proxies",
            Self::Identity => "auth.proxy.trusted_proxies",
        }
    }
}

/// Address space that only reaches the operator's own machines and networks: loopback,
/// RFC 1918 private ranges, link-local, carrier-grade NAT (100.64.0.0/10: Tailscale and
/// similar overlays), and for IPv6 loopback, unique-local (fc00::/7) and link-local.
const PRIVATE_SPACE: [ipnet::IpNet; 9] = [
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 0)),
        8,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 0)),
        8,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(172, 16, 0, 0)),
        12,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 0)),
        16,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 0, 0)),
        16,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(100, 64, 0, 0)),
        10,
    ),
    ipnet::IpNet::new_assert(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 128),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V6(std::net::Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)),
        7,
    ),
    ipnet::IpNet::new_assert(
        std::net::IpAddr::V6(std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
        10,
    ),
];

/// Refuses a trusted list that reaches further than the operator's own networks. Checked on
/// the union of the ranges, not range by range against `/0`: `0.0.0.0/1` + `128.0.0.0/1` is
/// the whole IPv4 space too.
///
/// * The union covers a whole address family: refused for identities always (anyone could
///   claim any account), and for forwarding unless `server.allow_public_trust` is set
///   (`true` says the same thing more plainly).
/// * A range reaches outside [`PRIVATE_SPACE`]: refused unless `server.allow_public_trust`.
///   The private blocks are disjoint and not adjacent, so the union stays inside them
///   exactly when every range lies inside one of them.
fn check_trust_scope(
    key: TrustKey,
    nets: &[ipnet::IpNet],
    allow_public: bool,
) -> Result<(), String> {
    let canonical: Vec<ipnet::IpNet> = nets.iter().map(|n| canonical_net(*n)).collect();
    let whole = ipnet::IpNet::aggregate(&canonical)
        .into_iter()
        .find(|n| n.prefix_len() == 0);
    if let Some(whole) = whole
        && (key == TrustKey::Identity || !allow_public)
    {
        let what = match key {
            TrustKey::Identity => {
                "would let anyone on the network claim any identity; list your proxy's address instead"
            }
            TrustKey::Forwarding => {
                "would let any client choose the address that is logged, audited and rate-limited; list your proxies' addresses, or use `true` if nothing but your proxy can reach Hallpass"
            }
        };
        return Err(format!(
            "{}: these ranges together cover the whole address space ({whole}) and {what}",
            key.name()
        ));
    }
    if allow_public {
        return Ok(());
    }
    match canonical
        .iter()
        .find(|n| !PRIVATE_SPACE.iter().any(|p| p.contains(*n)))
    {
        Some(public) => Err(format!(
            "{}: \"{public}\" reaches beyond private, loopback and link-local addresses (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, fc00::/7, fe80::/10, ::1); list your proxy's own address, or set server.allow_public_trust = true if it really is reached over public addresses",
            key.name()
        )),
        None => Ok(()),
    }
}

impl FromStr for TrustedProxies {
    type Err = String;
    /// `true`/`false`, a hop count, or addresses separated by commas (brackets optional).
    fn from_str(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        match s.to_ascii_lowercase().as_str() {
            "true" => return Ok(Self::All),
            "false" => return Ok(Self::default()),
            _ => {}
        }
        if let Ok(n) = s.parse::<u32>() {
            return Ok(Self::Hops(n));
        }
        let inner = s
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(s);
        Self::parse_list(inner.split(',').map(|p| p.trim().trim_matches('"')))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TrustedProxies;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, a hop count, or a list of IP addresses and CIDR ranges")
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(if v {
                    TrustedProxies::All
                } else {
                    TrustedProxies::default()
                })
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(TrustedProxies::Hops)
                    .map_err(|_| E::custom(format!("{v} is not a sensible hop count")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("{v}: a hop count cannot be negative"))),
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                TrustedProxies::parse_list(items.iter().map(String::as_str))
                    .map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_bool(true),
            Self::Hops(n) => s.serialize_u32(*n),
            Self::List(nets) => s.collect_seq(nets.iter().map(|n| {
                // A single address is shown as typed, without `/32`.
                if n.prefix_len() == n.max_prefix_len() {
                    n.addr().to_string()
                } else {
                    n.to_string()
                }
            })),
        }
    }
}

/// An `http(s)://host[:port]` URL without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// `scheme://host[:port]`, as browsers send it in `Origin`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The host name (or address) alone, without port, as `Host` headers are compared.
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

impl FromStr for PublicUrl {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let u = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err("must be an http:// or https:// URL with a host".into());
        }
        Ok(Self(u))
    }
}

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for PublicUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A duration written as `90s`, `15m`, `12h`, `7d` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{raw:?} is not a duration like 30s, 15m, 12h or 7d"))?;
        let factor = match unit.trim() {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{raw:?} is not a duration like 30s, 15m, 12h or 7d"
                ));
            }
        };
        Ok(Self(Duration::from_secs(n.saturating_mul(factor))))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3_600) => write!(f, "{}h", s / 3_600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self::secs(s)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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
        config.sso = crate::sso_env::SsoEnv::from_env(|k| std::env::var(k).ok())
            .map_err(ConfigError::Invalid)?;
        config.env_auth = crate::env_auth::EnvAuth::from_env(|k| std::env::var(k).ok())
            .map_err(ConfigError::Invalid)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
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

/// An IP address (a /32 or /128 range) or a CIDR range, in canonical form (see
/// [`trusted_by`]).
fn parse_net(raw: &str) -> Option<ipnet::IpNet> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(canonical_net)
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

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
    }

    /// Reads `server.trusted_proxies` the way `Config::load` does, from TOML or the environment.
    fn load_trusted(toml: &str, env: Option<&str>) -> Result<TrustedProxies, String> {
        let mut f = Figment::new().merge(Toml::string(toml));
        if let Some(v) = env {
            f = f.merge(figment::providers::Serialized::default(
                "server.trusted_proxies",
                // Exactly how `Env` reads a variable's value.
                v.parse::<figment::value::Value>()
                    .unwrap_or_else(|e| match e {}),
            ));
        }
        f.extract::<Config>()
            .map(|c| c.server.trusted_proxies)
            .map_err(describe)
    }

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
    fn trusted_proxies_accept_addresses_and_ranges() -> Result<(), String> {
        let mut c = Config::default();
        assert!(!c.is_trusted_proxy(ip("127.0.0.1")), "nobody by default");
        c.server.trusted_proxies = "10.0.0.5, 172.18.0.0/16, ::1".parse()?;
        assert!(c.validate().is_ok());
        assert!(c.is_trusted_proxy(ip("172.18.3.4")));
        assert!(c.is_trusted_proxy(ip("10.0.0.5")));
        assert!(
            c.is_trusted_proxy(ip("::ffff:10.0.0.5")),
            "IPv4-mapped peer"
        );
        assert!(c.is_trusted_proxy(ip("::1")));
        assert!(!c.is_trusted_proxy(ip("10.0.0.6")));
        let e = "10.0.0.0/33"
            .parse::<TrustedProxies>()
            .err()
            .unwrap_or_default();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        Ok(())
    }

    #[test]
    fn trusted_proxies_take_true_a_hop_count_or_a_list() -> Result<(), String> {
        assert_eq!(
            load_trusted("[server]\ntrusted_proxies = true", None)?,
            TrustedProxies::All
        );
        assert_eq!(
            load_trusted("[server]\ntrusted_proxies = 2", None)?,
            TrustedProxies::Hops(2)
        );
        let list = load_trusted(
            "[server]\ntrusted_proxies = [\"10.0.0.5\", \"172.18.0.0/16\"]",
            None,
        )?;
        assert_eq!(list, "10.0.0.5,172.18.0.0/16".parse()?);
        assert_eq!(load_trusted("", Some("[10.0.0.5, 172.18.0.0/16]"))?, list);
        assert_eq!(load_trusted("", Some("10.0.0.5"))?, "10.0.0.5".parse()?);
        assert_eq!(load_trusted("", Some("true"))?, TrustedProxies::All);
        assert_eq!(load_trusted("", Some("2"))?, TrustedProxies::Hops(2));
        let e = load_trusted("", Some("[10.0.0.5, nonsense]"))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("server.trusted_proxies") && e.contains("nonsense"),
            "{e}"
        );
        assert_eq!(
            load_trusted("[server]\ntrusted_proxies = false", None)?,
            TrustedProxies::default()
        );
        for bad in [
            "[server]\ntrusted_proxies = -1",
            "[server]\ntrusted_proxies = [\"10.0.0.5\", \"nonsense\"]",
            "[server]\ntrusted_proxies = \"nonsense\"",
            "[server]\ntrusted_proxies = 1.5",
        ] {
            let e = load_trusted(bad, None).err().unwrap_or_default();
            assert!(e.contains("server.trusted_proxies"), "{bad}: {e}");
        }
        // Hop counts and `true` trust the TCP peer whatever its address; 0 trusts nobody.
        let mut c = Config::default();
        c.server.trusted_proxies = TrustedProxies::Hops(1);
        assert!(c.is_trusted_proxy(ip("192.0.2.1")));
        c.server.trusted_proxies = TrustedProxies::Hops(0);
        assert!(!c.is_trusted_proxy(ip("192.0.2.1")));
        c.server.trusted_proxies = TrustedProxies::All;
        assert!(c.is_trusted_proxy(ip("192.0.2.1")));
        Ok(())
    }

    #[test]
    fn trusted_proxies_print_back_as_written() -> Result<(), String> {
        let mut c = Config::default();
        c.server.trusted_proxies = "[10.0.0.5, 172.18.0.0/16]".parse()?;
        let shown = c.to_redacted_toml();
        assert!(
            shown.contains("trusted_proxies = [\n    \"10.0.0.5\",\n    \"172.18.0.0/16\",\n]"),
            "{shown}"
        );
        c.server.trusted_proxies = TrustedProxies::Hops(2);
        assert!(c.to_redacted_toml().contains("trusted_proxies = 2"));
        Ok(())
    }

    /// `Config::validate`'s message, or "" when the configuration is accepted.
    fn refusal(c: &Config) -> String {
        c.validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn with_lists(server: &str, identity: &[&str], allow_public: bool) -> Result<Config, String> {
        let mut c = Config::default();
        c.server.trusted_proxies = server.parse()?;
        c.auth.proxy.trusted_proxies = identity.iter().map(|s| (*s).to_owned()).collect();
        c.server.allow_public_trust = allow_public;
        Ok(c)
    }

    #[test]
    fn trusted_ranges_that_together_cover_everything_are_refused() -> Result<(), String> {
        for list in [
            "0.0.0.0/1, 128.0.0.0/1",
            "0.0.0.0/2, 64.0.0.0/2, 128.0.0.0/1",
            "::/1, 8000::/1",
            "0.0.0.0/0",
            "::ffff:0:0/96",
        ] {
            let nets: Vec<&str> = list.split(", ").collect();
            let e = refusal(&with_lists("", &nets, false)?);
            assert!(
                e.contains("auth.proxy.trusted_proxies") && e.contains("whole address space"),
                "{list}: {e}"
            );
            // Identity is never taken from the whole network, even with the opt-in.
            let e = refusal(&with_lists("", &nets, true)?);
            assert!(e.contains("claim any identity"), "{list}: {e}");
            let e = refusal(&with_lists(list, &[], false)?);
            assert!(
                e.contains("server.trusted_proxies") && e.contains("whole address space"),
                "{list}: {e}"
            );
        }
        Ok(())
    }

    #[test]
    fn trusted_ranges_must_stay_in_private_space_unless_allowed() -> Result<(), String> {
        // Half of everything is not "private" either.
        for public in [
            "::/1",
            "0.0.0.0/1",
            "198.51.100.0/24",
            "2001:db8::/64",
            "8.8.8.8",
        ] {
            let e = refusal(&with_lists("", &["10.0.0.5", public], false)?);
            assert!(
                e.contains("auth.proxy.trusted_proxies") && e.contains("allow_public_trust"),
                "{public}: {e}"
            );
            let e = refusal(&with_lists(public, &[], false)?);
            assert!(
                e.contains("server.trusted_proxies") && e.contains("allow_public_trust"),
                "{public}: {e}"
            );
        }
        // Private, loopback, link-local, CGNAT and unique-local ranges are fine.
        let private = [
            "10.0.0.0/8",
            "192.168.0.0/16",
            "172.18.0.0/16",
            "127.0.0.1",
            "169.254.1.0/24",
            "100.64.0.0/10",
            "fd00::/8",
            "fe80::/10",
            "::1",
            "::ffff:10.0.0.5",
        ];
        let c = with_lists(&private.join(","), &private, false)?;
        assert_eq!(refusal(&c), "");
        // A public /24 needs the explicit opt-in, for either list.
        let c = with_lists("198.51.100.0/24", &["198.51.100.0/24"], true)?;
        assert_eq!(refusal(&c), "");
        // `true` and hop counts name no range: nothing to check.
        let c = with_lists("true", &[], false)?;
        assert_eq!(refusal(&c), "");
        Ok(())
    }

    #[test]
    fn both_lists_recognise_ipv4_peers_of_a_dual_stack_socket() -> Result<(), String> {
        let c = with_lists(
            "127.0.0.1, ::ffff:10.1.0.0/112",
            &["127.0.0.1", "::ffff:10.1.0.0/112"],
            false,
        )?;
        for peer in [
            "127.0.0.1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "::ffff:10.1.2.3",
        ] {
            assert!(c.auth.proxy.trusts(ip(peer)), "auth.proxy: {peer}");
            assert!(c.is_trusted_proxy(ip(peer)), "server: {peer}");
        }
        for peer in ["127.0.0.2", "::ffff:127.0.0.2", "::1", "10.2.0.1"] {
            assert!(!c.auth.proxy.trusts(ip(peer)), "auth.proxy: {peer}");
            assert!(!c.is_trusted_proxy(ip(peer)), "server: {peer}");
        }
        Ok(())
    }

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

    #[test]
    fn durations() {
        assert_eq!(
            "7d".parse::<HumanDuration>(),
            Ok(HumanDuration::secs(604_800))
        );
        assert_eq!("90".parse::<HumanDuration>(), Ok(HumanDuration::secs(90)));
        assert_eq!(HumanDuration::secs(3_600).to_string(), "1h");
        assert!("7 weeks".parse::<HumanDuration>().is_err());
    }
}
