//! Who is on the other end: the TCP peer, and the client address resolved from it and
//! `X-Forwarded-For` under `server.trusted_proxies`.
//!
//! Trust starts at the socket. When the TCP peer is not a trusted proxy, forwarding headers
//! are ignored and the peer is the client. When it is, `X-Forwarded-For` is read right to
//! left (the right-most entry was written by the nearest proxy), trusted hops are skipped and
//! the first untrusted address is the client. Entries to the left of it were written by the
//! client itself and are never read.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use super::error::UiError;
use crate::config::{TrustedProxies, canonical_ip};
use crate::state::AppState;

/// The caller's addresses. `peer` is the socket's; `ip` is the resolved client address that
/// logs, the audit log and rate limits use.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub peer: SocketAddr,
    ip: IpAddr,
}

impl Client {
    /// Resolves the client address of a request that came from `peer`.
    pub fn resolve(peer: SocketAddr, headers: &HeaderMap, trust: &TrustedProxies) -> Self {
        Self {
            peer,
            ip: client_ip(peer.ip(), headers, trust),
        }
    }

    /// The client as `serve` saw the request: its `ConnectInfo` and headers.
    pub fn of_request(
        extensions: &Extensions,
        headers: &HeaderMap,
        trust: &TrustedProxies,
    ) -> Option<Self> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| Self::resolve(*peer, headers, trust))
    }

    /// The resolved client address (not necessarily the TCP peer: see the module docs).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The resolved client address as the audit log stores it.
    pub fn ip_string(&self) -> String {
        self.ip.to_string()
    }
}

/// The right-most untrusted address of the chain `X-Forwarded-For…, peer`. An entry that is
/// not an address ends the walk at the hop that forwarded it: a broken chain can make many
/// clients look like one proxy (stricter limits), never like an address of the caller's choice.
fn client_ip(peer: IpAddr, headers: &HeaderMap, trust: &TrustedProxies) -> IpAddr {
    let mut client = canonical_ip(peer);
    if !trust.trusts_hop(client, 0) {
        return client;
    }
    // Several X-Forwarded-For lines form one list, in order.
    let values: Vec<Option<&str>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect();
    let hops = values.iter().rev().flat_map(|v| match v {
        Some(v) => v.rsplit(',').map(parse_hop).collect::<Vec<_>>(),
        None => vec![None],
    });
    for (i, hop) in hops.enumerate() {
        let Some(addr) = hop else { break };
        client = addr;
        if !trust.trusts_hop(addr, i + 1) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let raw = raw.trim();
    raw.parse::<IpAddr>()
        .ok()
        .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical_ip)
}

impl FromRequestParts<AppState> for Client {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        Client::of_request(
            &parts.extensions,
            &parts.headers,
            &state.config.server.trusted_proxies,
        )
        .ok_or_else(|| UiError::internal("no peer address on the request"))
    }
}

/// The client of a sign-in as "Your sessions" shows it: its resolved address and the
/// `User-Agent` it sent (as text, when it is text).
#[derive(Debug, Clone)]
pub struct Device {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Device {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        let client = Client::from_request_parts(parts, state).await?;
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Device {
            ip: client.ip(),
            user_agent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            if let Ok(v) = v.parse() {
                h.append("x-forwarded-for", v);
            }
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn resolve(trust: &str, peer: &str, headers: &[&str]) -> IpAddr {
        let trust: TrustedProxies = trust.parse().unwrap_or_default();
        client_ip(ip(peer), &xff(headers), &trust)
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        assert_eq!(
            resolve("", "198.51.100.7", &["1.2.3.4"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve("10.0.0.5", "198.51.100.7", &["1.2.3.4"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve("0", "198.51.100.7", &["1.2.3.4"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_list_skips_trusted_hops_from_the_right() {
        let t = "10.0.0.5, 172.18.0.0/16";
        // The client spoofed 6.6.6.6; the proxy appended the real address.
        assert_eq!(
            resolve(t, "10.0.0.5", &["6.6.6.6, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Two proxies, both trusted.
        assert_eq!(
            resolve(t, "10.0.0.5", &["6.6.6.6, 203.0.113.9, 172.18.0.3"]),
            ip("203.0.113.9")
        );
        // Several header lines are one list.
        assert_eq!(
            resolve(t, "10.0.0.5", &["6.6.6.6", "203.0.113.9:4711, 172.18.0.3"]),
            ip("203.0.113.9")
        );
        // A trusted peer without the header is the client itself.
        assert_eq!(resolve(t, "10.0.0.5", &[]), ip("10.0.0.5"));
        // Only trusted hops: the left-most address.
        assert_eq!(resolve(t, "10.0.0.5", &["172.18.0.9"]), ip("172.18.0.9"));
        // IPv4-mapped peers and bracketed IPv6 with a port.
        assert_eq!(
            resolve(t, "::ffff:10.0.0.5", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_stops_at_the_hop_that_forwarded_it() {
        let t = "10.0.0.5, 172.18.0.0/16";
        assert_eq!(
            resolve(t, "10.0.0.5", &["1.2.3.4, unknown"]),
            ip("10.0.0.5")
        );
        assert_eq!(
            resolve(t, "10.0.0.5", &["1.2.3.4, bogus, 172.18.0.3"]),
            ip("172.18.0.3")
        );
        assert_eq!(
            resolve("true", "10.0.0.5", &["1.2.3.4,,5.6.7.8"]),
            ip("5.6.7.8")
        );
    }

    #[test]
    fn a_hop_count_trusts_positions_not_addresses() {
        assert_eq!(
            resolve("1", "192.0.2.1", &["6.6.6.6, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve("2", "192.0.2.1", &["6.6.6.6, 203.0.113.9"]),
            ip("6.6.6.6")
        );
        assert_eq!(
            resolve("2", "192.0.2.1", &["203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn true_believes_the_whole_chain() {
        assert_eq!(
            resolve("true", "192.0.2.1", &["6.6.6.6, 203.0.113.9"]),
            ip("6.6.6.6")
        );
    }
}
