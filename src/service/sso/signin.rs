//! The browser's round trip to an OpenID provider, as one service both front ends call:
//! starting it (sign-in buttons, "Verify & Link" on the account and admin pages) and
//! finishing it at the callback. The HTTP side only extracts what the request carries — the
//! redirect URI it computed from its headers, the browser's nonce, the query — and turns the
//! typed [`Outcome`] into a redirect or a session.
//!
//! A started flow (nonce, PKCE verifier, redirect URI) is stored by `super::flows`, bound to
//! the browser; the callback consumes it before anything else (single use), then checks its
//! age, its provider, the provider's error parameter and the provider's settings, and only
//! then exchanges the code — with the redirect URI stored at the start, never one computed
//! again from the callback's headers. Every failure is a [`SignInProblem`] (or
//! [`LinkProblem`]); details, never a code or token, go to the log.

use std::net::IpAddr;
use std::sync::Arc;

use super::flows::{self, Missing};
use super::identities::{self, SignInRefusal};
use super::oidc::{FlowError, OidcRuntime, PendingFlow, Purpose, VerifiedIdentity};
use super::providers;
use crate::db::DbPool;
use crate::domain::User;
use crate::domain::sso::{LinkProblem, Provider, SignInProblem};
use crate::secret::ServerSecret;
use crate::service::rate_limit::{Action, Attempt, RateLimiter};
use crate::service::setup::SetupGate;
use crate::service::{Actor, OwnSession, Refusal, ServiceError};
use crate::sso_env::SsoEnv;

/// What the round trip needs of the server.
pub struct Sso<'a> {
    pub db: &'a DbPool,
    pub secret: &'a ServerSecret,
    pub env: &'a SsoEnv,
    pub oidc: &'a OidcRuntime,
    /// Burnt when the first identity to sign in becomes the admin.
    pub setup: &'a SetupGate,
    /// `HALLPASS_AUTH_BYPASS`'s dev admin, if any.
    pub dev_admin: Option<i64>,
    /// How far in the future an ID token's `iat` may lie.
    pub clock_skew_secs: i64,
}

/// A round trip about to start, as the HTTP side sees it.
pub struct Start<B> {
    /// The callback URL the provider sends the browser back to (computed from the request's
    /// headers or `server.public_url`); stored with the flow.
    pub redirect_uri: String,
    /// Where to go afterwards (a same-site path).
    pub next: String,
    /// Names the browser; asked for only once the provider's URL is built, because asking
    /// may set a cookie.
    pub binding: B,
}

/// Who starts "Verify & Link" (the identity that comes back is linked to them).
pub struct Linker<'a> {
    pub user: &'a User,
    /// As the audit log names them.
    pub actor: Actor,
    pub ip: IpAddr,
}

/// Starts a sign-in with provider `id`: the provider's authorization URL to send the
/// browser to, or why not.
pub async fn start_login<B: FnOnce() -> Option<String>>(
    sso: &Sso<'_>,
    id: &str,
    start: Start<B>,
) -> Result<Result<String, SignInProblem>, ServiceError> {
    let Some(provider) = providers::usable(sso.db, sso.secret, sso.env, id).await? else {
        return Ok(Err(SignInProblem::Unavailable));
    };
    Ok(begin(sso, &provider, Purpose::Login, start).await)
}

/// Starts "Verify & Link" with `provider`. Every start counts against the rate limit
/// (`Action::SsoLink`), however it ends: the trip to the provider is the cost.
pub async fn start_link<B: FnOnce() -> Option<String>>(
    sso: &Sso<'_>,
    limiter: &RateLimiter,
    linker: Linker<'_>,
    provider: &Provider,
    start: Start<B>,
) -> Result<Result<String, SignInProblem>, ServiceError> {
    let attempt =
        Attempt::new(Action::SsoLink, linker.ip, Some(&linker.user.username)).by(linker.actor);
    let purpose = Purpose::Link {
        user_id: linker.user.id,
    };
    let begun = begin(sso, provider, purpose, start);
    limiter.guard(attempt, async { Ok(begun.await) }).await
}

/// Builds the authorization request and stores the flow for the browser.
async fn begin<B: FnOnce() -> Option<String>>(
    sso: &Sso<'_>,
    provider: &Provider,
    purpose: Purpose,
    start: Start<B>,
) -> Result<String, SignInProblem> {
    let (url, flow_state, flow) = sso
        .oidc
        .start(provider, &start.redirect_uri, purpose, start.next)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.id, error = %e, "cannot start OIDC sign-in");
            problem_at_start(&e)
        })?;
    let binding = (start.binding)().ok_or_else(|| {
        tracing::error!("no CSRF context to bind the OIDC sign-in to");
        SignInProblem::Failed
    })?;
    flows::remember(sso.db, &binding, &flow_state, flow)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store the started OIDC sign-in");
            SignInProblem::Failed
        })?;
    Ok(url)
}

/// The problem of a flow that failed before a code came back (discovery, settings).
fn problem_at_start(e: &FlowError) -> SignInProblem {
    if e.is_misconfiguration() {
        SignInProblem::Misconfigured
    } else {
        SignInProblem::Unreachable
    }
}

/// The problem of a callback whose code could not be turned into an identity.
fn problem_at_finish(e: &FlowError) -> SignInProblem {
    match e {
        FlowError::Discovery(_) | FlowError::Config(_) => problem_at_start(e),
        _ => SignInProblem::Failed,
    }
}

/// What the provider sent back in the callback's query.
#[derive(Debug, Default)]
pub struct Returned {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// The browser the callback came from.
pub struct Browser<'a> {
    /// The nonce it sent (never a fresh one).
    pub binding: Option<String>,
    /// Who is signed in, if anyone (a Verify & Link must come back to the same user).
    pub user: Option<&'a User>,
    pub ip: String,
    /// Their session, kept when a link ends the user's other sessions.
    pub session: Arc<dyn OwnSession>,
}

/// How a callback ended.
#[derive(Debug)]
pub enum Outcome {
    /// Start a session for `user` and go to `next`.
    SignedIn { user: User, next: String },
    /// The identity is linked to the signed-in user; the link ended their other sessions,
    /// this one carried on.
    Linked { provider: String, next: String },
    /// Back to the sign-in page with this banner.
    SignInRefused(SignInProblem),
    /// Back to the page that started Verify & Link (`next`) with this message.
    LinkRefused { problem: LinkProblem, next: String },
}

/// Finishes the round trip that came back at provider `id`'s callback.
pub async fn finish(
    sso: &Sso<'_>,
    id: &str,
    returned: Returned,
    browser: Browser<'_>,
) -> Result<Outcome, ServiceError> {
    let flow = match redeem(sso.db, id, returned.state.as_deref(), browser.binding).await? {
        Ok(flow) => flow,
        Err(problem) => return Ok(Outcome::SignInRefused(problem)),
    };
    let (provider, who) = match verify(sso, id, &flow, returned).await? {
        Ok(verified) => verified,
        Err(problem) => return Ok(refused(flow, problem)),
    };
    match flow.purpose {
        Purpose::Login => sign_in(sso, &provider, who, flow.next, browser.ip).await,
        Purpose::Link { user_id } => {
            let Some(me) = browser.user.filter(|u| u.id == user_id) else {
                tracing::warn!(provider = %id, "Verify & Link rejected: the session no longer belongs to the user who started it");
                return Ok(refused(flow, SignInProblem::Expired));
            };
            let actor = Actor {
                user_id: Some(me.id),
                name: me.username.clone(),
                ip: Some(browser.ip),
                session: Some(browser.session),
            };
            link(sso.db, &provider, &who, flow.next, me, actor).await
        }
    }
}

/// Where a failed round trip goes back to: the sign-in page, or the page that started
/// Verify & Link.
fn refused(flow: PendingFlow, problem: SignInProblem) -> Outcome {
    match flow.purpose {
        Purpose::Login => Outcome::SignInRefused(problem),
        Purpose::Link { .. } => Outcome::LinkRefused {
            problem: problem.into(),
            next: flow.next,
        },
    }
}

/// Single use: the flow is consumed (one DELETE) before anything else is checked, so of
/// several deliveries of one callback only one goes on to exchange the code.
async fn redeem(
    db: &DbPool,
    id: &str,
    state: Option<&str>,
    binding: Option<String>,
) -> Result<Result<PendingFlow, SignInProblem>, ServiceError> {
    let taken = match (binding, state.unwrap_or_default()) {
        (Some(b), given) if !given.is_empty() => flows::take(db, &b, given).await?,
        _ => Err(Missing::Unknown),
    };
    Ok(taken.map_err(|missing| {
        match missing {
            Missing::Unknown => {
                tracing::warn!(provider = %id, "OIDC callback rejected: unknown, reused or missing state, or another browser's")
            }
            Missing::Expired => {
                tracing::warn!(provider = %id, "OIDC callback rejected: the sign-in request expired")
            }
        }
        SignInProblem::Expired
    }))
}

/// The checks on a redeemed flow, then the code exchange: the provider and the identity it
/// vouches for.
async fn verify(
    sso: &Sso<'_>,
    id: &str,
    flow: &PendingFlow,
    returned: Returned,
) -> Result<Result<(Provider, VerifiedIdentity), SignInProblem>, ServiceError> {
    if flow.provider != id {
        tracing::warn!(provider = %id, "OIDC callback rejected: the sign-in request belongs to another provider");
        return Ok(Err(SignInProblem::Expired));
    }
    if let Some(error) = returned.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::warn!(provider = %id, error = %error, "OIDC provider returned an error instead of a code");
        return Ok(Err(SignInProblem::Failed));
    }
    let provider = match flow.purpose {
        Purpose::Login => providers::usable(sso.db, sso.secret, sso.env, id).await?,
        // Verify & Link comes before SSO login is switched on (step 2 of the wizard).
        Purpose::Link { .. } => providers::find(sso.db, sso.secret, sso.env, id).await?,
    };
    let Some(provider) = provider else {
        return Ok(Err(SignInProblem::Unavailable));
    };
    if provider.fingerprint() != flow.fingerprint {
        tracing::warn!(provider = %id, "OIDC callback rejected: the provider's settings changed since the sign-in started");
        return Ok(Err(SignInProblem::Expired));
    }
    let Some(code) = returned.code.filter(|c| !c.is_empty()) else {
        return Ok(Err(SignInProblem::Failed));
    };
    match sso
        .oidc
        .finish(&provider, code, flow, sso.clock_skew_secs)
        .await
    {
        Ok(who) => Ok(Ok((provider, who))),
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "OIDC sign-in failed");
            Ok(Err(problem_at_finish(&e)))
        }
    }
}

/// A verified identity signs in (or gets an account, by the provider's policy).
async fn sign_in(
    sso: &Sso<'_>,
    provider: &Provider,
    who: VerifiedIdentity,
    next: String,
    ip: String,
) -> Result<Outcome, ServiceError> {
    let subject = who.subject.clone();
    let signed =
        identities::sign_in(sso.db, sso.env, provider, who, Some(ip), sso.dev_admin).await?;
    let id = &provider.id;
    Ok(match signed {
        Ok(signed) => {
            if signed.first_admin {
                sso.setup.mark_done();
                tracing::info!(username = %signed.user.username, provider = %id, "the first identity to sign in became the admin");
            }
            Outcome::SignedIn {
                user: signed.user,
                next,
            }
        }
        Err(SignInRefusal::NotLinked) => {
            tracing::warn!(
                "OIDC login rejected: no linked account for provider={} sub={}",
                id,
                subject
            );
            Outcome::SignInRefused(SignInProblem::NotLinked)
        }
        Err(SignInRefusal::AccountDisabled) => Outcome::SignInRefused(SignInProblem::Disabled),
        Err(SignInRefusal::NoUsername | SignInRefusal::ExistingAccount) => {
            tracing::warn!(provider = %id, sub = %subject, "OIDC sign-in: no username could be derived from the claims");
            Outcome::SignInRefused(SignInProblem::Failed)
        }
    })
}

/// Verify & Link: the identity that came back is linked to the user who started it.
async fn link(
    db: &DbPool,
    provider: &Provider,
    who: &VerifiedIdentity,
    next: String,
    me: &User,
    actor: Actor,
) -> Result<Outcome, ServiceError> {
    let problem = match identities::link(db, actor, provider, me.id, &who.subject, Some(who)).await
    {
        Ok(_) => {
            return Ok(Outcome::Linked {
                provider: provider.id.clone(),
                next,
            });
        }
        Err(ServiceError::Refused(Refusal::AlreadyLinked(_))) => LinkProblem::AlreadyLinked,
        Err(ServiceError::Refused(Refusal::IdentityTaken(_) | Refusal::BreakGlassIdentities)) => {
            LinkProblem::Taken
        }
        Err(e) => return Err(e),
    };
    Ok(Outcome::LinkRefused { problem, next })
}
