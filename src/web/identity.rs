//! Who is calling. Resolved once per request by [`resolve`] and read by the extractors:
//! [`CurrentUser`] (must be signed in) and [`MaybeUser`].

use crate::service::Refusal;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tower_sessions::Session;

use super::error::{ApiError, UiError};
use super::session;
use crate::domain::User;
use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::{ServiceError, api_keys, auth};
use crate::state::AppState;
use crate::web::client::Client;

/// How the caller proved who they are. More methods (API key, proxy, SSO) plug in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Session,
    ApiKey,
    /// Identity headers from a trusted forward-auth proxy.
    Proxy,
    /// `HALLPASS_AUTH_BYPASS`: every request is the dev admin.
    Bypass,
    /// The session cookie of a sign-in through an OpenID provider (recorded in the session
    /// at sign-in: no lookup per request).
    Oidc,
}

impl AuthMethod {
    /// How a signed-in browser session was made.
    fn of(s: &session::SignedIn) -> Self {
        if s.via_oidc {
            AuthMethod::Oidc
        } else {
            AuthMethod::Session
        }
    }

    /// The caller holds a signed-in session cookie, however it signed in.
    pub fn is_session(self) -> bool {
        matches!(self, AuthMethod::Session | AuthMethod::Oidc)
    }
}

/// What forward-auth made of this request (for the sign-in page's banner and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// A trusted proxy sent no user header.
    MissingHeader,
    /// The identity it sent may not sign in.
    Refused(crate::service::proxy::ProxyRefusal),
    /// The identity it sent must pass Hallpass's own second step first (the instance asks
    /// after proxy sign-ins, and this browser has not given it yet).
    SecondStep,
}

/// Left by [`by_credentials`] for [`by_session`]: the proxy vouched for `user`, who must pass
/// the second step in this browser. Passed means: this browser's session is signed in as the
/// same account (the second step signs it in), so it lasts as long as that session.
#[derive(Clone)]
struct ProxySecondStep {
    user: User,
    step: super::second_step::Step,
}

/// A signed-in, active user.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// Shared: the identity is read by several layers of every request; cloning it must
    /// not copy the whole row each time.
    pub user: std::sync::Arc<User>,
    pub auth_method: AuthMethod,
}

impl CurrentUser {
    /// The caller as the audit log names them.
    pub fn actor(&self, client: &super::client::Client) -> crate::service::Actor {
        if self.user.id == crate::env_auth::BREAK_GLASS_ID {
            return crate::service::Actor {
                user_id: None,
                name: "admin (break-glass)".into(),
                ip: Some(client.ip_string()),
                session: None,
            };
        }
        crate::service::Actor {
            user_id: Some(self.user.id),
            name: self.user.username.clone(),
            ip: Some(client.ip_string()),
            session: None,
        }
    }
}

/// The resolved identity, stored in the request extensions.
#[derive(Debug, Clone, Default)]
pub struct Identity(pub Option<CurrentUser>);

/// Middleware: an `Authorization: Bearer` API key on `/api/*` first (a bad key is refused,
/// never replaced by the cookie), else the session, checked against the user's current
/// `session_version` and status on every request, so a bumped version or a disabled
/// account ends sessions at once.
pub async fn resolve(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    match by_credentials(&state, &mut req).await {
        Ok(Some(current)) => {
            req.extensions_mut().insert(Identity(Some(current)));
            let rest = |req| super::gates::then_handler(&state, &session, req, next);
            super::csrf::within_context(&state, req, rest).await
        }
        Ok(None) => by_session(&state, &session, req, next).await,
        Err(refused) => refused,
    }
}

/// The ways in that need no session, in order: the dev bypass, a trusted proxy's headers, a
/// bearer API key. `Ok(None)`: none speaks for this request. `Err`: the answer already (a
/// bad key is refused, never replaced by the cookie).
async fn by_credentials(
    state: &AppState,
    req: &mut Request,
) -> Result<Option<CurrentUser>, Response> {
    let signed = |user, auth_method| CurrentUser {
        user: std::sync::Arc::new(user),
        auth_method,
    };
    if let Some(dev) = state.dev_admin {
        match crate::service::users::get(&state.db, dev).await {
            Ok(Some(user)) if user.may_sign_in() => {
                return Ok(Some(signed(user, AuthMethod::Bypass)));
            }
            Ok(_) => {}
            Err(e) => return Err(ApiError::from(e).into_response()),
        }
    }
    // The header preset may have been changed by another process: read under the stamp.
    let names = if state.config.auth.proxy.enabled {
        Some(
            state
                .proxy
                .headers_now(&state.db, &state.config.auth.proxy)
                .await,
        )
    } else {
        None
    };
    match proxy_identity(state, req, names) {
        Some(Ok((who, ip))) => {
            let cfg = &state.config.auth.proxy;
            match crate::service::proxy::sign_in(&state.db, cfg, who, Some(ip)).await {
                Ok(Ok(user)) => return proxy_second_factor(state, req, user).await,
                Ok(Err(r)) => {
                    state
                        .metrics
                        .sign_in(SignInMethod::Proxy, SignInOutcome::Refused);
                    _ = req.extensions_mut().insert(ProxyOutcome::Refused(r));
                }
                Err(e) => {
                    state.metrics.sign_in_failed(SignInMethod::Proxy, &e);
                    return Err(ApiError::from(e).into_response());
                }
            }
        }
        Some(Err(outcome)) => _ = req.extensions_mut().insert(outcome),
        None => {}
    }
    let Some(key) = bearer_key(req) else {
        return Ok(None);
    };
    let trusted = &state.config.server.trusted_proxies;
    let ip = Client::of_request(req.extensions(), req.headers(), trusted)
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.ip());
    match api_keys::sign_in(&state.keys, &state.secret, &state.limiter, &key, ip).await {
        Ok(user) => Ok(Some(CurrentUser {
            user,
            auth_method: AuthMethod::ApiKey,
        })),
        Err(ServiceError::Refused(Refusal::InvalidApiKey)) => {
            let error = ApiError::from(Refusal::InvalidApiKey);
            // RFC 6750 §3: say which scheme failed, so generic clients know not to retry.
            let challenge = [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            )];
            Err((challenge, error).into_response())
        }
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// A proxy-vouched `user`: signed in, unless the instance asks for the second factor after
/// proxy sign-ins and `user` has one (or must set one up); then [`by_session`] decides.
async fn proxy_second_factor(
    state: &AppState,
    req: &mut Request,
    user: User,
) -> Result<Option<CurrentUser>, Response> {
    use crate::service::two_factor::{self, Next};
    let asked = two_factor::after_proxy(&state.db, &state.proxy_asks_second_factor, &user).await;
    let step = match asked {
        Ok(Next::Done) => {
            state
                .metrics
                .sign_in(SignInMethod::Proxy, SignInOutcome::Success);
            return Ok(Some(CurrentUser {
                user: std::sync::Arc::new(user),
                auth_method: AuthMethod::Proxy,
            }));
        }
        Ok(Next::Code) => super::second_step::Step::Code,
        Ok(Next::Enrol) => super::second_step::Step::Enrol,
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    req.extensions_mut().insert(ProxySecondStep { user, step });
    Ok(None)
}

/// The session cookie, checked against the user's current `session_version` and status.
async fn by_session(state: &AppState, session: &Session, mut req: Request, next: Next) -> Response {
    let (resolved, cached) = match cached_session(state, session).await {
        Some((resolved, cached)) => (Some(resolved), Some(cached)),
        // The session is loaded inside this scope, so its user row comes along (see
        // `service::sessions::capturing_user`).
        None => {
            match crate::service::sessions::capturing_user(from_session(state, session)).await {
                Ok(resolved) => (resolved, None),
                Err(e) => {
                    tracing::error!(error = %e, "cannot resolve the session");
                    return (
                        session::STORE_FAILURE,
                        "The session store is unavailable; try again shortly.",
                    )
                        .into_response();
                }
            }
        }
    };
    let resolved = match req.extensions_mut().remove::<ProxySecondStep>() {
        None => resolved,
        Some(wanted) => match proxy_second_step(state, session, &mut req, wanted, resolved).await {
            Ok(resolved) => resolved,
            Err(response) => return response,
        },
    };
    let rest = |req| super::gates::then_handler(state, session, req, next);
    let Some((user, signed_in, expiry)) = resolved else {
        req.extensions_mut().insert(Identity(None));
        return super::csrf::within_context(state, req, rest).await;
    };
    req.extensions_mut().insert(Identity(Some(user)));
    if let Some(cached) = cached {
        let extensions = req.extensions_mut();
        extensions.insert(super::read_stamp::SessionStamp(cached.at));
        if let Some(token) = cached.token {
            extensions.insert(super::csrf::SessionToken(token));
        }
    }
    let response = super::csrf::within_context(state, req, rest).await;
    session::pin_expiry(session, &signed_in, expiry).await;
    response
}

/// The proxy vouched for `wanted.user`, who must pass the second step in this browser: passed
/// when the session is signed in as them (then the request is theirs, by the proxy); otherwise
/// nobody is signed in, whatever else the session holds, and the second step is started
/// (once: a browser already in it for this account keeps its place).
async fn proxy_second_step(
    state: &AppState,
    session: &Session,
    req: &mut Request,
    wanted: ProxySecondStep,
    resolved: Option<Resolved>,
) -> Result<Option<Resolved>, Response> {
    if let Some((mut current, signed_in, expiry)) = resolved
        && current.user.id == wanted.user.id
    {
        current.auth_method = AuthMethod::Proxy;
        return Ok(Some((current, signed_in, expiry)));
    }
    req.extensions_mut().insert(ProxyOutcome::SecondStep);
    let pending = super::second_step::pending(state, session)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if pending.is_some_and(|p| p.user.id == wanted.user.id) {
        return Ok(None);
    }
    // A page is worth coming back to after the code; an API call or an asset is not.
    let next = match super::surface::Surface::api_request(req.extensions()) {
        false if req.method() == axum::http::Method::GET => {
            safe_next(req.uri().path_and_query().map(|p| p.as_str()))
        }
        _ => "/".to_owned(),
    };
    super::second_step::begin(session, &wanted.user, wanted.step, &next)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "session store: starting the second step");
            (
                session::STORE_FAILURE,
                "The session store is unavailable; try again shortly.",
            )
                .into_response()
        })?;
    Ok(None)
}

/// The identity a trusted forward-auth proxy vouches for. `None`: proxy sign-in is off, the
/// TCP peer is not a trusted proxy (its headers are ignored), or the instance is not set up.
fn proxy_identity(
    state: &AppState,
    req: &Request,
    names: Option<crate::domain::proxy::HeaderNames>,
) -> Option<Result<(crate::domain::proxy::ProxyIdentity, String), ProxyOutcome>> {
    let cfg = &state.config.auth.proxy;
    if !cfg.enabled || !state.setup.is_done() {
        return None;
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0)?;
    if !cfg.trusts(peer.ip()) {
        return None;
    }
    let names = names?;
    let header = |name: &str| {
        (!name.is_empty())
            .then(|| req.headers().get(name))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let Some(username) = header(&names.user).and_then(|u| crate::domain::sso::clean_claim(u, 255))
    else {
        return Some(Err(ProxyOutcome::MissingHeader));
    };
    let who = crate::domain::proxy::ProxyIdentity {
        username,
        email: header(&names.email).and_then(|e| crate::domain::sso::clean_claim(e, 254)),
        name: header(&names.name).and_then(|n| crate::domain::sso::clean_claim(n, 100)),
        groups: header(&names.groups)
            .map(crate::domain::proxy::parse_groups)
            .unwrap_or_default(),
    };
    // The audit log records the client the proxy served, as everywhere else.
    let client = crate::web::client::Client::resolve(
        peer,
        req.headers(),
        &state.config.server.trusted_proxies,
    );
    Some(Ok((who, client.ip_string())))
}

/// The token of `Authorization: Bearer <token>` on an API path (the scheme is
/// case-insensitive). Browsers never send this on their own, so it is not cookie-like.
fn bearer_key(req: &Request) -> Option<String> {
    if !super::surface::Surface::api_request(req.extensions()) {
        return None;
    }
    let value = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    // A bare `Bearer` is a (broken) attempt at a key too, not a reason to try the cookie.
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

type Resolved = (CurrentUser, session::SignedIn, time::OffsetDateTime);

/// The signed-in session straight from the session cache, when nothing about it is due: its
/// user still accepts it, its lifetime is not over and its idle expiry need not move yet
/// (the same checks as [`from_session`], which handles every other case). The session
/// itself is not loaded into the request: nothing is copied on the hot path. The token is
/// the session's own CSRF token.
async fn cached_session(state: &AppState, session: &Session) -> Option<(Resolved, Cached)> {
    let hit = state.sessions.cached_sign_in(&session.id()?).await?;
    let s = hit.signed_in;
    let current = hit.user.id == s.user_id
        && hit.user.accepts_session(s.session_version)
        && !s.lifetime_over(&state.config)
        && s.extension_due(&state.config).is_none();
    if !current {
        return None;
    }
    let expiry = crate::service::sessions::from_unix_ms(s.expires_at)?;
    let user = CurrentUser {
        user: hit.user,
        auth_method: AuthMethod::of(&s),
    };
    let cached = Cached {
        token: hit.csrf_token,
        at: hit.at,
    };
    Some(((user, s, expiry), cached))
}

/// What a session taken from the cache brings besides the user: its CSRF token, and the
/// stamp it was checked under (see `read_stamp`).
struct Cached {
    token: Option<std::sync::Arc<str>>,
    at: crate::service::stamped::Taken,
}

async fn from_session(
    state: &AppState,
    session: &Session,
) -> Result<Option<Resolved>, Box<dyn std::error::Error + Send + Sync>> {
    let Some(signed_in) = session::signed_in(session).await? else {
        return Ok(None);
    };
    if signed_in.lifetime_over(&state.config) {
        session::sign_out(session).await?;
        return Ok(None);
    }
    // The session query (run by `signed_in` above) brought the user's row along.
    let loaded = crate::service::sessions::loaded_user();
    let user = match loaded {
        Some(u) if u.id == signed_in.user_id => {
            Some(u).filter(|u| u.accepts_session(signed_in.session_version))
        }
        // The break-glass admin has no row; its sessions end when the key changes or goes.
        _ if signed_in.user_id == crate::env_auth::BREAK_GLASS_ID => state
            .config
            .env_auth
            .break_glass
            .as_ref()
            .map(crate::env_auth::BreakGlass::user)
            .filter(|u| u.accepts_session(signed_in.session_version)),
        _ => auth::session_user(&state.db, signed_in.user_id, signed_in.session_version).await?,
    };
    match user {
        Some(user) => {
            let expiry = session::extend(session, &signed_in, &state.config).await?;
            let current = CurrentUser {
                user: std::sync::Arc::new(user),
                auth_method: AuthMethod::of(&signed_in),
            };
            Ok(Some((current, signed_in, expiry)))
        }
        None => {
            session::sign_out(session).await?;
            Ok(None)
        }
    }
}

/// Rejection for routes that need a user: HTML is sent to the sign-in page (coming back
/// afterwards), JSON gets 401.
pub enum AuthRequired {
    Page {
        next: String,
    },
    Api,
    /// A proxy sign-in waiting for the second step: the page goes there (it comes back to
    /// where the step was started), the API says why.
    SecondStepPage,
    SecondStepApi,
}

impl IntoResponse for AuthRequired {
    fn into_response(self) -> Response {
        match self {
            AuthRequired::Api => ApiError::unauthenticated().into_response(),
            AuthRequired::SecondStepApi => {
                ApiError::from(Refusal::SecondStepRequired).into_response()
            }
            AuthRequired::SecondStepPage => Redirect::to("/login/two-factor").into_response(),
            AuthRequired::Page { next } => {
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthRequired;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthRequired> {
        if let Some(Identity(Some(user))) = parts.extensions.get::<Identity>() {
            return Ok(user.clone());
        }
        let second_step = parts.extensions.get::<ProxyOutcome>() == Some(&ProxyOutcome::SecondStep);
        if super::surface::Surface::of_parts(parts).is_api() {
            Err(match second_step {
                true => AuthRequired::SecondStepApi,
                false => AuthRequired::Api,
            })
        } else if second_step {
            Err(AuthRequired::SecondStepPage)
        } else {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned());
            Err(AuthRequired::Page { next })
        }
    }
}

/// The caller, if signed in.
pub struct MaybeUser(pub Option<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, UiError> {
        Ok(MaybeUser(
            parts.extensions.get::<Identity>().and_then(|i| i.0.clone()),
        ))
    }
}

/// Only same-site paths are honoured as a post-login destination.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_same_site_only() {
        assert_eq!(safe_next(Some("/account?tab=1")), "/account?tab=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/x\r\nSet-Cookie: a")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
