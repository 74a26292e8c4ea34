//! Whom Hallpass believes about a request: `server.trusted_proxies` (the client's address)
//! and the check every trusted list goes through (`auth.proxy.trusted_proxies` too):
//! addresses compared in canonical form, lists kept inside private address space.
//!
//! Over 500 lines on purpose: about half is the tests of the trust rules, kept beside them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
pub(super) enum TrustKey {
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
pub(super) fn check_trust_scope(
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

/// An IP address (a /32 or /128 range) or a CIDR range, in canonical form (see
/// [`trusted_by`]).
pub(super) fn parse_net(raw: &str) -> Option<ipnet::IpNet> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(canonical_net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, describe};
    use figment::Figment;
    use figment::providers::{Format, Toml};

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
}
