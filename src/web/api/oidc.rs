//! `GET /api/auth/oidc/{provider}/login` and `…/callback`: the browser's round trip to an
//! OpenID provider. Started flows (nonce, PKCE verifier, redirect URI) live in the database,
//! bound to the browser by the nonce of its signed CSRF token, a cookie that needs no
//! storage (`web::csrf::browser_nonce`, `service::sso::flows`), so starting one writes no
//! session row; they
//! are single-use — consumed before the code is exchanged — and expire after ten minutes.
//! Every failure ends on a page with a banner that says what kind of problem it was; details
//! (never a code or token) go to the log.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::sso::Provider;
use crate::service::sso::flows::{self, Missing};
use crate::service::sso::identities::{self, SignInRefusal};
use crate::service::sso::oidc::{FlowError, Purpose};
use crate::service::sso::providers;
use crate::service::{Actor, Refusal, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::identity::{MaybeUser, safe_next};
use crate::web::session;

/// What went wrong, as the login page's `sso_error` code.
#[derive(Debug, Clone, Copy)]
pub enum Banner {
    NotLinked,
    Expired,
    Failed,
    Unavailable,
    Unreachable,
    Misconfigured,
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
            Banner::Misconfigured => "misconfigured",
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
            "misconfigured" => {
                "Sign-in with this provider is misconfigured. An administrator needs to check its settings (the server log names the problem); meanwhile use another way to sign in."
            }
            "disabled" => "This account is disabled.",
            _ => return None,
        })
    }
}

impl Banner {
    /// The banner for a flow that failed before a code came back (discovery, settings).
    fn for_start(e: &FlowError) -> Banner {
        if e.is_misconfiguration() {
            Banner::Misconfigured
        } else {
            Banner::Unreachable
        }
    }

    /// The banner for a callback whose code could not be turned into an identity.
    fn for_finish(e: &FlowError) -> Banner {
        match e {
            FlowError::Discovery(_) | FlowError::Config(_) => Banner::for_start(e),
            _ => Banner::Failed,
        }
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

/// Sends the browser to the provider; used by the login buttons and by "Verify & Link".
pub async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    provider: &Provider,
    purpose: Purpose,
    next: String,
) -> Result<Response, Banner> {
    let uri = redirect_uri(state, headers, client, &provider.id);
    let (url, flow_state, flow) = state
        .oidc
        .start(provider, &uri, purpose, next)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, "cannot start OIDC sign-in");
            Banner::for_start(&e)
        })?;
    // The browser's CSRF nonce (a cookie, no storage) binds the flow to this browser.
    let binding = crate::web::csrf::browser_nonce().ok_or_else(|| {
        tracing::error!("no CSRF context to bind the OIDC sign-in to");
        Banner::Failed
    })?;
    flows::remember(&state.db, &binding, &flow_state, flow)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store the started OIDC sign-in");
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
    match begin(&state, &headers, &client, &provider, Purpose::Login, next).await {
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
    client: Client,
    MaybeUser(current): MaybeUser,
    Path(id): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    // Single use: the flow is consumed (one DELETE) before anything else is checked, so of
    // several deliveries of this callback only one goes on to exchange the code.
    let given = q.state.unwrap_or_default();
    let bound = crate::web::csrf::sent_browser_nonce();
    let taken = match bound {
        Some(b) if !given.is_empty() => flows::take(&state.db, &b, &given).await,
        _ => Ok(Err(Missing::Unknown)),
    };
    let flow = match taken {
        Ok(Ok(flow)) => flow,
        Ok(Err(Missing::Unknown)) => {
            tracing::warn!(provider = %id, "OIDC callback rejected: unknown, reused or missing state, or another browser's");
            return to_login(Banner::Expired);
        }
        Ok(Err(Missing::Expired)) => {
            tracing::warn!(provider = %id, "OIDC callback rejected: the sign-in request expired");
            return to_login(Banner::Expired);
        }
        Err(e) => return crate::web::error::UiError::from(e).into_response(),
    };
    let fail = |b: Banner| match flow.purpose {
        Purpose::Login => to_login(b),
        Purpose::Link { .. } => {
            Redirect::to(&with_query(&flow.next, "link_error", b.code())).into_response()
        }
    };
    if flow.provider != id {
        tracing::warn!(provider = %id, "OIDC callback rejected: the sign-in request belongs to another provider");
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
    let skew = i64::try_from(state.config.auth.oidc.clock_skew.get().as_secs()).unwrap_or(i64::MAX);
    let who = match state.oidc.finish(&provider, code, &flow, skew).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "OIDC sign-in failed");
            return fail(Banner::for_finish(&e));
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
                Ok(Err(SignInRefusal::NotLinked)) => {
                    tracing::warn!(
                        "OIDC login rejected: no linked account for provider={} sub={}",
                        id,
                        who.subject
                    );
                    to_login(Banner::NotLinked)
                }
                Ok(Err(SignInRefusal::AccountDisabled)) => to_login(Banner::Disabled),
                Ok(Err(SignInRefusal::NoUsername | SignInRefusal::ExistingAccount)) => {
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
                session: None,
            }
            .keeping(session.clone());
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
                Ok(_) => {
                    // The link ended the user's other sessions; this one carried on.
                    Redirect::to(&with_query(&flow.next, "linked", &provider.id)).into_response()
                }
                Err(ServiceError::Refused(
                    r @ (Refusal::AlreadyLinked(_)
                    | Refusal::IdentityTaken(_)
                    | Refusal::BreakGlassIdentities),
                )) => {
                    let c = if matches!(r, Refusal::AlreadyLinked(_)) {
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
