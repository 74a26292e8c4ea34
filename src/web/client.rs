//! Who is on the other end of the TCP connection.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::error::UiError;

/// The client as seen from the socket. Forwarding headers are never trusted here; the
/// trusted-proxy rules for `X-Forwarded-For` come with proxy support.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub peer: SocketAddr,
}

impl Client {
    pub fn ip(&self) -> IpAddr {
        self.peer.ip()
    }

    pub fn ip_string(&self) -> String {
        self.peer.ip().to_string()
    }
}

/// True when the request comes straight from this machine: a loopback peer *and* no
/// forwarding headers. A reverse proxy on the same host makes every visitor look like
/// 127.0.0.1, so a forwarded request is never treated as local.
pub fn is_direct_loopback(peer: &SocketAddr, headers: &HeaderMap) -> bool {
    let forwarded = [
        "x-forwarded-for",
        "forwarded",
        "x-real-ip",
        "x-forwarded-host",
    ]
    .iter()
    .any(|h| headers.contains_key(*h));
    let ip = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    ip.is_loopback() && !forwarded
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, UiError> {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| Client { peer: *peer })
            .ok_or_else(|| UiError::internal("no peer address on the request"))
    }
}
