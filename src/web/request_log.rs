//! The span every request runs in, and its log line.
//!
//! The span carries what ties the request's log lines together: a request id (the proxy's
//! `X-Request-Id` when it sent a plain one, else a random one), the method, the route pattern
//! (`/api/admin/users/{id}`, which groups well and names no account), the path and the client
//! address resolved under `server.trusted_proxies`, as in the audit log. Never the query
//! string: it may carry codes or tokens. The line at the end of each request (status and
//! latency) is at `info` with `log.requests = true`, else at `debug`.

use axum::extract::MatchedPath;
use axum::http::Request;
use tower_http::LatencyUnit;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};

use super::client::Client;
use crate::config::{LogConfig, TrustedProxies};

/// The longest request id taken from a proxy.
const MAX_ID: usize = 64;

#[derive(Clone)]
pub struct RequestSpan {
    trusted: TrustedProxies,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        // The fields are worked out only when the span is enabled (the macro evaluates them
        // lazily).
        tracing::info_span!(
            "request",
            request_id = %request_id(req),
            method = %req.method(),
            route = req.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str),
            path = %req.uri().path(),
            client = %Client::of_request(req.extensions(), req.headers(), &self.trusted)
                .map_or_else(String::new, |c| c.ip_string()),
        )
    }
}

pub type Layer = TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan>;

/// The tracing layer for the router, as `log` configures it.
pub fn layer(log: &LogConfig, trusted: TrustedProxies) -> Layer {
    let level = if log.requests {
        Level::INFO
    } else {
        Level::DEBUG
    };
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan { trusted })
        .on_response(
            DefaultOnResponse::new()
                .level(level)
                .latency_unit(LatencyUnit::Micros),
        )
}

/// The proxy's `X-Request-Id` when it is a plain token (letters, digits, `-`, `_`, `.`, at
/// most 64), so log lines can be matched with the proxy's; otherwise a random one.
fn request_id<B>(req: &Request<B>) -> String {
    let sent = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_ID
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    match sent {
        Some(id) => id.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    }
}
