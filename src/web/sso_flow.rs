//! The HTTP side of single sign-on round trips, shared by the JSON routes (`/api/auth/oidc/…`)
//! and the HTML pages that start one (account, admin SSO wizard) — neither front end imports
//! the other. What belongs to HTTP stays here: the callback URL computed from the request's
//! headers, the browser's nonce cookie, redirects. The protocol is `service::sso::signin`.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use crate::domain::sso::{LinkProblem, Provider, SignInProblem};
use crate::service::sso::signin::{self, Linker, Sso, Start};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;

/// What the sign-in service needs of the server.
pub fn context(state: &AppState) -> Sso<'_> {
    Sso {
        db: &state.db,
        secret: &state.secret,
        env: &state.config.sso,
        oidc: &state.oidc,
        setup: &state.setup,
        dev_admin: state.dev_admin,
        clock_skew_secs: i64::try_from(state.config.auth.oidc.clock_skew.get().as_secs())
            .unwrap_or(i64::MAX),
    }
}

fn header_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
}

/// The callback URL the provider sends the browser back to: from `server.public_url`, else
/// from `X-Forwarded-Proto`/`X-Forwarded-Host` when the TCP peer is a trusted proxy, else
/// from `Host`. Computed when a round trip starts and stored with it; the callback reuses
/// the stored one.
pub fn redirect_uri(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    provider_id: &str,
) -> String {
    let base = public_base(state, headers, client);
    format!("{base}/api/auth/oidc/{provider_id}/callback")
}

/// The scheme and host people reach Hallpass at, for links it hands out (the SSO callback,
/// invite links): `server.public_url`, else the trusted proxy's `X-Forwarded-Proto`/`-Host`,
/// else `Host`.
pub fn public_base(state: &AppState, headers: &HeaderMap, client: &Client) -> String {
    let forwarded = state
        .config
        // The socket's peer, never a forwarded address.
        .is_trusted_proxy(client.peer.ip())
        .then(|| {
            let host = header_token(headers, "x-forwarded-host")?;
            let proto = match header_token(headers, "x-forwarded-proto") {
                Some("https") => "https",
                _ => "http",
            };
            Some(format!("{proto}://{host}"))
        })
        .flatten();
    match (&state.config.server.public_url, forwarded) {
        (Some(u), _) => u.as_str().to_owned(),
        (None, Some(f)) => f,
        (None, None) => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                        })
                })
                .map_or_else(|| state.config.server.bind.to_string(), str::to_owned);
            format!("http://{host}")
        }
    }
}

/// What a round trip starting from this request needs: its callback URL and the browser's
/// nonce (a cookie, no storage), which binds the flow to this browser.
pub fn start(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    provider_id: &str,
    next: String,
) -> Start<fn() -> Option<String>> {
    Start {
        redirect_uri: redirect_uri(state, headers, client, provider_id),
        next,
        binding: crate::web::csrf::browser_nonce,
    }
}

/// "Verify & Link" from the page at `back` (a path without a query): to the provider, or
/// back to `back` with the reason it could not start. Rate-limited by the service.
pub async fn begin_link(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    me: &CurrentUser,
    provider: &Provider,
    back: String,
) -> Result<Response, UiError> {
    let linker = Linker {
        user: &me.user,
        actor: me.actor(client),
        ip: client.ip(),
    };
    let start = start(state, headers, client, &provider.id, back.clone());
    let started =
        signin::start_link(&context(state), &state.limiter, linker, provider, start).await?;
    Ok(match started {
        Ok(url) => Redirect::to(&url),
        Err(p) => Redirect::to(&with_query(
            &back,
            "link_error",
            LinkProblem::from(p).code(),
        )),
    }
    .into_response())
}

/// The sign-in page with the banner of `problem`.
pub fn to_login(problem: SignInProblem) -> Response {
    Redirect::to(&format!("/login?sso_error={}", problem.code())).into_response()
}

/// `path` with `key=value` appended to its query.
pub fn with_query(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}
