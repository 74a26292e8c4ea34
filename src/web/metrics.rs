//! `GET /metrics`: the Prometheus scrape, behind `metrics.allow` and `metrics.token`.
//!
//! The route exists only with `metrics.enabled` (otherwise the request falls through to the
//! ordinary 404). It sits outside the session and identity layers, like the health checks: a
//! scraper has no session, and a signed-in admin's cookie or API key opens nothing here —
//! only the token (and the address, with `allow`) do.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client::Client;
use super::error::ApiError;
use crate::config::MetricsConfig;
use crate::state::AppState;

/// The scrape: 403 from an address outside `metrics.allow`, 401 without the right bearer
/// token (when one is set), else the registry in Prometheus text format.
pub async fn scrape(State(state): State<AppState>, client: Client, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&state.config.metrics, client, &headers) {
        return refusal;
    }
    let sessions = match crate::service::metrics::active_sessions(&state.db).await {
        Ok(n) => n,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    match state.metrics.render(sessions) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The answer to a caller who may not scrape; `None` for one who may. The address first:
/// from outside `allow` the token is not even looked at.
fn refused(config: &MetricsConfig, client: Client, headers: &HeaderMap) -> Option<Response> {
    if !config.allows(client.ip()) {
        return Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "METRICS_ADDRESS_NOT_ALLOWED",
                "This address may not read the metrics (metrics.allow).",
            )
            .into_response(),
        );
    }
    let token = config.token.as_ref()?;
    if bearer_matches(headers, token.expose()) {
        return None;
    }
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "METRICS_TOKEN_REQUIRED",
        "Send the metrics token as Authorization: Bearer <token>.",
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"hallpass metrics\""),
    );
    Some(res)
}

/// Whether `Authorization: Bearer <t>` carries `expected`. Both sides are hashed first, so
/// the comparison takes the same time whatever the lengths, and is constant-time over the
/// digests: a wrong guess teaches nothing about the token.
fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let Some(sent) = sent else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(sent.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(header::AUTHORIZATION, v);
            }
            h
        };
        let t = "0123456789abcdef";
        assert!(bearer_matches(&with("Bearer 0123456789abcdef"), t));
        assert!(bearer_matches(&with("bearer 0123456789abcdef"), t));
        assert!(!bearer_matches(&with("Bearer 0123456789abcdeF"), t));
        assert!(!bearer_matches(&with("Bearer 0123456789abcde"), t));
        assert!(!bearer_matches(&with("Basic 0123456789abcdef"), t));
        assert!(!bearer_matches(&with("0123456789abcdef"), t));
        assert!(!bearer_matches(&HeaderMap::new(), t));
    }
}
