//! The forward-auth endpoints other apps' proxies call before every request, with
//! Authelia's paths and answers so existing proxy snippets work with a changed host name:
//! `/api/authz/forward-auth` (Traefik `forwardAuth`, Caddy `forward_auth`) and
//! `/api/authz/auth-request` (nginx `auth_request`). Any method is answered like GET.
//!
//! They sit outside the page and API layers on purpose: the `Host` is the guarded app's,
//! not Hallpass's (so the host check does not apply), there is no form to protect with
//! CSRF, no session to create, and every layer costs every request of every app.

mod answer;
mod credentials;
mod forwarded;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::response::Response;

use crate::domain::apps::{Decision, Protected};
use crate::metrics::ForwardAuth;
use crate::service::authz::Ctx;
use crate::state::AppState;
use crate::web::client::Client;
use forwarded::Style;

/// `/api/authz/forward-auth`.
#[utoipa::path(
    method(get, head, post, put, patch, delete, options),
    path = "/api/authz/forward-auth",
    summary = "May this caller open this URL of another app? (Caddy, Traefik)",
    description = "Asked by a reverse proxy before each request to a guarded app, with the \
        request described in `X-Forwarded-*` headers and the browser's cookies and \
        `Authorization` header passed along. Any method is answered like GET; the body is \
        never read. See docs/forward-auth.md.",
    params(
        ("X-Forwarded-Method" = Option<String>, Header, description = "The original request's method (GET when absent)"),
        ("X-Forwarded-Proto" = String, Header, description = "`http` or `https`"),
        ("X-Forwarded-Host" = String, Header, description = "The guarded app's host name"),
        ("X-Forwarded-Uri" = String, Header, description = "The original path and query, starting with `/`"),
    ),
    security(("api_key" = []), ("api_key_basic" = []), ("session_cookie" = []), ()),
    responses(
        (status = 200, description = "Allowed. The proxy copies these headers onto the request to the app.", headers(
            ("Remote-User" = String, description = "The username"),
            ("Remote-Name" = String, description = "The display name"),
            ("Remote-Email" = String, description = "The email address, empty if none"),
            ("Remote-Groups" = String, description = "The groups' names, comma-separated"),
        )),
        (status = 302, description = "Not signed in, a browser's GET or HEAD: to `<public_url>/login?rd=<the original URL>`", headers(("Location" = String))),
        (status = 303, description = "Not signed in, a browser's other methods: the same", headers(("Location" = String))),
        (status = 400, description = "The proxy sent too little: a plain-text message names the missing or malformed header", content_type = "text/plain"),
        (status = 401, description = "Not signed in, and not a browser (`X-Requested-With: XMLHttpRequest`, or an `Accept` without `text/html`)"),
        (status = 403, description = "Signed in, but the app's rules do not open it to this account (or the account is pending, rejected or disabled): a small page says why", content_type = "text/html"),
    )
)]
pub async fn forward_auth(State(state): State<AppState>, req: Request) -> Response {
    decide(&state, req.into_parts().0, Style::ForwardAuth).await
}

/// `/api/authz/auth-request`.
#[utoipa::path(
    method(get, head, post, put, patch, delete, options),
    path = "/api/authz/auth-request",
    summary = "May this caller open this URL of another app? (nginx `auth_request`)",
    description = "The same decision as `/api/authz/forward-auth`, for nginx: the request is \
        described by `X-Original-URL` and `X-Original-Method`, and since nginx cannot pass \
        a redirect through `auth_request`, a browser that is not signed in gets `401` with \
        the sign-in address in `Location` (the snippet in docs/forward-auth.md turns it \
        into the redirect).",
    params(
        ("X-Original-URL" = String, Header, description = "The original absolute http(s) URL"),
        ("X-Original-Method" = Option<String>, Header, description = "The original request's method (GET when absent)"),
    ),
    security(("api_key" = []), ("api_key_basic" = []), ("session_cookie" = []), ()),
    responses(
        (status = 200, description = "Allowed. The nginx snippet copies these headers onto the request to the app.", headers(
            ("Remote-User" = String, description = "The username"),
            ("Remote-Name" = String, description = "The display name"),
            ("Remote-Email" = String, description = "The email address, empty if none"),
            ("Remote-Groups" = String, description = "The groups' names, comma-separated"),
        )),
        (status = 400, description = "The proxy sent too little: a plain-text message names the missing or malformed header", content_type = "text/plain"),
        (status = 401, description = "Not signed in; for a browser, `Location` holds `<public_url>/login?rd=<the original URL>`", headers(("Location" = Option<String>))),
        (status = 403, description = "Signed in, but the app's rules do not open it to this account (or the account is pending, rejected or disabled)", content_type = "text/html"),
    )
)]
pub async fn auth_request(State(state): State<AppState>, req: Request) -> Response {
    decide(&state, req.into_parts().0, Style::AuthRequest).await
}

/// Reads the parts only: the body (if a proxy sends one) is never read.
async fn decide(state: &AppState, req: Parts, style: Style) -> Response {
    let headers = &req.headers;
    let original = match forwarded::read(style, headers) {
        Ok(o) => o,
        Err(problem) => {
            state.metrics.forward_auth(ForwardAuth::BadRequest);
            return answer::bad_request(style, &problem);
        }
    };
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let client = Client::resolve(peer, headers, &state.config.server.trusted_proxies);
    let key = credentials::api_key(headers);
    let credentials = credentials::of(key.as_deref(), headers, crate::web::session::COOKIE_NAME);
    let ctx = Ctx {
        db: &state.db,
        config: &state.config,
        secret: &state.secret,
        keys: &state.keys,
        limiter: &state.limiter,
        dev_admin: state.dev_admin,
    };
    let request = Protected {
        method: &original.method,
        host: &original.host,
        path: original.url.path(),
    };
    match state
        .authz
        .check(ctx, credentials, request, client.ip())
        .await
    {
        Ok(checked) => {
            state.metrics.forward_auth(match checked.decision {
                Decision::Allow => ForwardAuth::Allow,
                Decision::SignIn => ForwardAuth::SignIn,
                Decision::Deny(_) => ForwardAuth::Deny,
            });
            answer::decided(&state.config, style, headers, &original, checked)
        }
        Err(e) => {
            state.metrics.forward_auth(ForwardAuth::Error);
            answer::failed(e)
        }
    }
}

/// The forward-auth routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(forward_auth, auth_request))]
pub struct Doc;
