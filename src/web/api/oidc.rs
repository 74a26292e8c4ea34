//! `GET /api/auth/oidc/{provider}/login` and `…/callback`: the browser's round trip to an
//! OpenID provider. Started flows live in the browser's own session (state, nonce, PKCE
//! verifier), are single-use and expire after ten minutes. Every failure ends on a page with
//! a banner that says what kind of problem it was; details (never a code or token) go to
//! the log.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::domain::sso::Provider;
use crate::service::sso::identities::{self, Refusal};
use crate::service::sso::oidc::{FLOW_LIFETIME_SECS, PendingFlow, Purpose};
use crate::service::sso::providers;
use crate::service::{Actor, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::identity::{MaybeUser, safe_next};
use crate::web::session;

const FLOWS_KEY: &str = "oidc_flows";
/// Sign-ins started in other tabs stay valid; older ones are dropped.
const MAX_FLOWS: usize = 5;

/// What went wrong, as the login page's `sso_error` code.
#[derive(Debug, Clone, Copy)]
pub enum Banner {
    NotLinked,
    Expired,
    Failed,
    Unavailable,
    Unreachable,
    Disabled,
}

impl Banner {
    pub fn code(self) -> &'static str {
        match self {
            Banner::NotLinked => "not_linked",
            Banner::Expired => "expired",
            Banner::Failed => "failed",
            Banner::Unavailable => "unavailable",
            Banner::Unreachable => "unreachable",
            Banner::Disabled => "disabled",
        }
    }

    /// The sentence shown for a code (never text from the URL).
    pub fn message(code: &str) -> Option<&'static str> {
        Some(match code {
            "not_linked" => {
                "Your identity at the provider is not linked to an account here. Ask an administrator to link it, or sign in with your password and use Verify & Link on your account page."
            }
            "expired" => "The sign-in request expired or was tampered with. Please start again.",
            "failed" => {
                "Hallpass could not verify your identity with the provider. Try again; if it keeps failing, an administrator can find the reason in the server log."
            }
            "unavailable" => "That sign-in provider is not configured or is disabled.",
            "unreachable" => {
                "The sign-in provider cannot be reached right now. Try again later or use another way to sign in."
            }
            "disabled" => "This account is disabled.",
            _ => return None,
        })
    }
}

fn to_login(b: Banner) -> Response {
    Redirect::to(&format!("/login?sso_error={}", b.code())).into_response()
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
/// from `Host`.
pub fn redirect_uri(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    provider_id: &str,
) -> String {
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
    let base = match (&state.config.server.public_url, forwarded) {
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
    };
    format!("{base}/api/auth/oidc/{provider_id}/callback")
}

async fn take_flows(session: &Session) -> Vec<PendingFlow> {
    session
        .get::<Vec<PendingFlow>>(FLOWS_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Sends the browser to the provider; used by the login buttons and by "Verify & Link".
pub async fn begin(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    client: &Client,
    provider: &Provider,
    purpose: Purpose,
    next: String,
) -> Result<Response, Banner> {
    let uri = redirect_uri(state, headers, client, &provider.id);
    let (url, flow) = state
        .oidc
        .start(provider, &uri, purpose, next)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, "cannot start OIDC sign-in");
            Banner::Unreachable
        })?;
    let now = crate::db::now_ts();
    let mut flows: Vec<PendingFlow> = take_flows(session)
        .await
        .into_iter()
        .filter(|f| now - f.started_at <= FLOW_LIFETIME_SECS)
        .collect();
    flows.push(flow);
    let skip = flows.len().saturating_sub(MAX_FLOWS);
    let flows: Vec<PendingFlow> = flows.into_iter().skip(skip).collect();
    session.insert(FLOWS_KEY, flows).await.map_err(|e| {
        tracing::error!(error = %e, "cannot store the OIDC flow in the session");
        Banner::Failed
    })?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let provider = match usable_provider(&state, &id).await {
        Ok(Some(p)) => p,
        Ok(None) => return to_login(Banner::Unavailable),
        Err(e) => return crate::web::error::UiError::from(e).into_response(),
    };
    let next = safe_next(q.next.as_deref());
    match begin(
        &state,
        &session,
        &headers,
        &client,
        &provider,
        Purpose::Login,
        next,
    )
    .await
    {
        Ok(r) => r,
        Err(b) => to_login(b),
    }
}

/// The provider, if SSO login is on and it is enabled.
async fn usable_provider(state: &AppState, id: &str) -> Result<Option<Provider>, ServiceError> {
    let modes = providers::modes(&state.db, &state.config.sso).await?;
    if !modes.sso {
        return Ok(None);
    }
    Ok(
        providers::find(&state.db, &state.secret, &state.config.sso, id)
            .await?
            .filter(|p| p.enabled),
    )
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    client: Client,
    MaybeUser(current): MaybeUser,
    Path(id): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    // Single use: the flow leaves the session before anything else is checked.
    let mut flows = take_flows(&session).await;
    let given = q.state.unwrap_or_default();
    let found = flows
        .iter()
        .position(|f| bool::from(f.state.as_bytes().ct_eq(given.as_bytes())));
    let Some(index) = found else {
        tracing::warn!(provider = %id, "OIDC callback rejected: unknown, reused or missing state");
        return to_login(Banner::Expired);
    };
    let flow = flows.remove(index);
    if let Err(e) = session.insert(FLOWS_KEY, flows).await {
        tracing::error!(error = %e, "cannot update the session");
        return to_login(Banner::Failed);
    }
    let fail = |b: Banner| match flow.purpose {
        Purpose::Login => to_login(b),
        Purpose::Link { .. } => {
            Redirect::to(&with_query(&flow.next, "link_error", b.code())).into_response()
        }
    };
    if flow.provider != id || crate::db::now_ts() - flow.started_at > FLOW_LIFETIME_SECS {
        tracing::warn!(provider = %id, "OIDC callback rejected: the sign-in request expired or belongs to another provider");
        return fail(Banner::Expired);
    }
    if let Some(error) = q.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::warn!(provider = %id, error = %error, "OIDC provider returned an error instead of a code");
        return fail(Banner::Failed);
    }
    let provider = match flow.purpose {
        Purpose::Login => usable_provider(&state, &id).await,
        // Verify & Link comes before SSO login is switched on (step 2 of the wizard).
        Purpose::Link { .. } => {
            providers::find(&state.db, &state.secret, &state.config.sso, &id).await
        }
    };
    let provider = match provider {
        Ok(Some(p)) => p,
        Ok(None) => return fail(Banner::Unavailable),
        Err(e) => return crate::web::error::UiError::from(e).into_response(),
    };
    if provider.fingerprint() != flow.fingerprint {
        tracing::warn!(provider = %id, "OIDC callback rejected: the provider's settings changed since the sign-in started");
        return fail(Banner::Expired);
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return fail(Banner::Failed);
    };
    let uri = redirect_uri(&state, &headers, &client, &id);
    let who = match state.oidc.finish(&provider, &uri, code, &flow).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "OIDC sign-in failed");
            return fail(Banner::Failed);
        }
    };
    match flow.purpose {
        Purpose::Login => {
            let result = identities::sign_in(
                &state.db,
                &state.config.sso,
                &provider,
                who.clone(),
                Some(client.ip_string()),
                state.dev_admin,
            )
            .await;
            match result {
                Ok(Ok(signed)) => {
                    if signed.first_admin {
                        state.setup.mark_done();
                        tracing::info!(username = %signed.user.username, provider = %id, "the first identity to sign in became the admin");
                    }
                    if let Err(e) = session::sign_in(&session, &signed.user, &state.config).await {
                        return crate::web::error::UiError::from(e).into_response();
                    }
                    Redirect::to(&flow.next).into_response()
                }
                Ok(Err(Refusal::NotLinked)) => {
                    tracing::warn!(
                        "OIDC login rejected: no linked account for provider={} sub={}",
                        id,
                        who.subject
                    );
                    to_login(Banner::NotLinked)
                }
                Ok(Err(Refusal::AccountDisabled)) => to_login(Banner::Disabled),
                Ok(Err(Refusal::NoUsername)) => {
                    tracing::warn!(provider = %id, sub = %who.subject, "OIDC sign-in: no username could be derived from the claims");
                    to_login(Banner::Failed)
                }
                Err(e) => crate::web::error::UiError::from(e).into_response(),
            }
        }
        Purpose::Link { user_id } => {
            let Some(me) = current.filter(|u| u.user.id == user_id) else {
                tracing::warn!(provider = %id, "Verify & Link rejected: the session no longer belongs to the user who started it");
                return fail(Banner::Expired);
            };
            let actor = Actor {
                user_id: Some(me.user.id),
                name: me.user.username.clone(),
                ip: Some(client.ip_string()),
            };
            match identities::link(
                &state.db,
                actor,
                &provider,
                me.user.id,
                &who.subject,
                Some(&who),
            )
            .await
            {
                Ok(version) => {
                    // The link ended the user's other sessions; this one carries on.
                    if let Err(e) = session::renew_version(&session, version).await {
                        return crate::web::error::UiError::from(e).into_response();
                    }
                    Redirect::to(&with_query(&flow.next, "linked", &provider.id)).into_response()
                }
                Err(ServiceError::Refused { code, .. }) => {
                    let c = if code == "ALREADY_LINKED" {
                        "already_linked"
                    } else {
                        "taken"
                    };
                    Redirect::to(&with_query(&flow.next, "link_error", c)).into_response()
                }
                Err(e) => crate::web::error::UiError::from(e).into_response(),
            }
        }
    }
}

fn with_query(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}
