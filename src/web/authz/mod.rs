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
pub async fn forward_auth(State(state): State<AppState>, req: Request) -> Response {
    decide(&state, req.into_parts().0, Style::ForwardAuth).await
}

/// `/api/authz/auth-request`.
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
#[openapi(paths())]
pub struct Doc;
