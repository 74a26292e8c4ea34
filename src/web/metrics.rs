//! `GET /metrics`: the Prometheus scrape, behind `metrics.allow` and `metrics.token`.
//!
//! The route exists only with `metrics.enabled` (otherwise the request falls through to the
//! ordinary 404). It sits outside the session and identity layers, like the health checks: a
//! scraper has no session, and a signed-in admin's cookie or API key opens nothing here —
//! only the token (and the address, with `allow`) do.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::client::Client;
use super::error::ApiError;
use crate::state::AppState;

/// The scrape: 403 from an address outside `metrics.allow`, 401 without the right bearer
/// token (when one is set), 429 past the brute-force limit on wrong tokens, else the
/// registry in Prometheus text format.
pub async fn scrape(State(state): State<AppState>, client: Client, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&state, client, &headers).await {
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
/// from outside `allow` the token is not even looked at (nor counted).
async fn refused(state: &AppState, client: Client, headers: &HeaderMap) -> Option<Response> {
    let config = &state.config.metrics;
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
    let sent = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let admitted =
        crate::service::metrics::admit(&state.limiter, config.token.as_ref(), sent, client.ip());
    let e = admitted.await.err()?;
    // 429 (with Retry-After) like every rate-limited route; 401 names the scheme to use.
    let mut res = ApiError::from(e).into_response();
    if res.status() == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"hallpass metrics\""),
        );
    }
    Some(res)
}
