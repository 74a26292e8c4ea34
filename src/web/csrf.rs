//! Cross-site request forgery protection for every state-changing request.
//!
//! Two independent checks: the browser's `Origin` (or `Referer`) must be this site, and a
//! secret token bound to the session must come back — as the `csrf_token` form field for
//! HTML forms, or the `X-CSRF-Token` header for JSON calls and htmx. Enforced here, in one
//! middleware, so no handler can forget it.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::{ApiError, UiError};
use super::identity::{AuthMethod, Identity};
use super::session;
use crate::config::Config;
use crate::state::AppState;

pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";

/// Endpoints that sign a caller in have no session to bind a token to yet; the origin check
/// still applies, and a JSON body cannot be sent cross-site without a CORS preflight.
const TOKENLESS_API: &[&str] = &["/api/auth/login"];

pub async fn verify(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    let api = req.uri().path().starts_with("/api/");
    if !same_origin(req.headers(), &state.config) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
        return refuse(api, "CROSS_SITE_REQUEST", "Cross-site request refused.");
    }
    // Only the cookie rides along on a forged request; a caller who proved itself with an
    // `Authorization` header (API key) or is anonymous has no session to abuse.
    let cookie_authenticated = req
        .extensions()
        .get::<Identity>()
        .and_then(|i| i.0.as_ref())
        .is_some_and(|u| u.auth_method == AuthMethod::Session);
    if api && (!cookie_authenticated || TOKENLESS_API.contains(&req.uri().path())) {
        return next.run(req).await;
    }
    let expected = session::existing_csrf_token(&session).await;
    let (req, given) = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(h) => {
            let h = h.to_owned();
            (req, Some(h))
        }
        None if !api => match token_from_form(req, state.config.server.body_limit).await {
            Ok(pair) => pair,
            Err(response) => return response,
        },
        None => (req, None),
    };
    let ok = match (expected, given) {
        (Some(e), Some(g)) => bool::from(e.as_bytes().ct_eq(g.as_bytes())),
        _ => false,
    };
    if ok {
        next.run(req).await
    } else {
        refuse(
            api,
            "CSRF_TOKEN_INVALID",
            "This form has expired or did not come from Hallpass. Go back, reload the page and try again.",
        )
    }
}

fn refuse(api: bool, code: &'static str, message: &str) -> Response {
    if api {
        ApiError::new(StatusCode::FORBIDDEN, code, message).into_response()
    } else {
        UiError::Forbidden(message.to_owned()).into_response()
    }
}

/// Reads a url-encoded body to find the token, then hands the same bytes on.
async fn token_from_form(
    req: Request,
    limit: usize,
) -> Result<(Request, Option<String>), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.").into_response())?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// `Origin` (else `Referer`) must name this site: the configured public URL, or the host the
/// request was sent to. Requests with neither header (non-browser clients) pass this check
/// and still need the token.
fn same_origin(headers: &HeaderMap, config: &Config) -> bool {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(source) = source else {
        return true;
    };
    let Ok(url) = url::Url::parse(source) else {
        return false; // includes the opaque origin "null"
    };
    let origin = url.origin().ascii_serialization();
    if config
        .server
        .public_url
        .as_ref()
        .is_some_and(|p| p.origin() == origin)
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    host.is_some_and(|h| h.eq_ignore_ascii_case(&authority))
}
