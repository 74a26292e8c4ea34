//! `/api/me/sessions…` (your own sessions), `/api/admin/users/{id}/sessions…` (anyone's,
//! admins only) and `/api/admin/lockouts…`: the JSON mirror of "Your sessions" and the
//! lockout view, over the same service calls as the pages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tower_sessions::Session;
use utoipa::ToSchema;

use super::ApiPath;
use crate::service::rate_limit::Lockout;
use crate::service::session_control::{self, SessionInfo};
use crate::service::{Missing, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

/// A signed-in session (a browser, or `POST /api/auth/login`); times are RFC 3339 (UTC).
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    /// Names the session in `DELETE …/sessions/{id}` (opaque; not the cookie).
    id: String,
    /// The browser and system, read from the user agent, e.g. `Firefox on Linux`.
    #[schema(example = "Firefox on Linux")]
    device: String,
    /// The `User-Agent` at sign-in; null if none was sent.
    #[schema(required = true)]
    user_agent: Option<String>,
    /// The client address at sign-in; null if unknown.
    #[schema(required = true)]
    ip: Option<String>,
    #[schema(format = DateTime)]
    signed_in_at: String,
    /// The last request seen, to the minute; null for sessions from before it was recorded.
    #[schema(format = DateTime, required = true)]
    last_seen_at: Option<String>,
    /// When it ends unless used again.
    #[schema(format = DateTime)]
    expires_at: String,
    /// Whether this is the caller's own session (never with an API key).
    current: bool,
}

impl From<SessionInfo> for SessionView {
    fn from(s: SessionInfo) -> Self {
        Self {
            id: s.id,
            device: s.device,
            user_agent: s.user_agent,
            ip: s.ip,
            signed_in_at: rfc3339(s.signed_in_at),
            last_seen_at: s.last_seen_at.map(rfc3339),
            expires_at: rfc3339(s.expires_at),
            current: s.current,
        }
    }
}

/// An account's sessions.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

/// How many sessions a request ended.
#[derive(Serialize, ToSchema)]
#[schema(as = SessionsEnded)]
pub struct Ended {
    #[schema(minimum = 0)]
    ended: usize,
}

fn current(session: &Session) -> Option<String> {
    session.id().map(|id| session_control::current_key(&id))
}

async fn listing(
    state: &AppState,
    user_id: i64,
    session: &Session,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = session_control::list(&state.db, user_id, current(session)).await?;
    Ok(Json(SessionList {
        sessions: sessions.into_iter().map(SessionView::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/me/sessions",
    summary = "Your sessions",
    responses((status = OK, description = "The caller's sessions", body = SessionList))
)]
pub async fn list_mine(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<Json<SessionList>, ApiError> {
    listing(&state, me.user.id, &session).await
}

#[utoipa::path(
    delete,
    path = "/api/me/sessions/{id}",
    summary = "End one of your sessions",
    description = "Signs that browser out at once. Ending your own current session signs you out.",
    params(("id" = String, Path, description = "The session's `id`")),
    responses(
        (status = NO_CONTENT, description = "Ended"),
        (status = NOT_FOUND, description = "No such session of yours (or it ended already)", body = ErrorBody),
    )
)]
pub async fn end_mine(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    session_control::end(&state.db, me.actor(&client), me.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session but the caller's (an API key has none: then every session ends).
#[utoipa::path(
    delete,
    path = "/api/me/sessions/others",
    summary = "End your other sessions",
    description = "Every session but the caller's own; with an API key (no session), every one.",
    responses((status = OK, description = "How many ended", body = Ended))
)]
pub async fn end_my_others(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    session: Session,
) -> Result<Json<Ended>, ApiError> {
    let keep = current(&session);
    let ended = session_control::end_others(&state.db, me.actor(&client), me.user.id, keep).await?;
    Ok(Json(Ended { ended }))
}

/// A user id in a path: anything that is not a number names no account.
fn user_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(ServiceError::from(Missing::Account)))
}

#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/sessions",
    summary = "An account's sessions",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = OK, description = "The account's sessions", body = SessionList),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
    )
)]
pub async fn list_of_user(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    session: Session,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<SessionList>, ApiError> {
    let id = user_id(&id)?;
    session_control::account_name(&state.db, id).await?;
    listing(&state, id, &session).await
}

#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/sessions/{session}",
    summary = "End one of an account's sessions",
    description = "Admins only.",
    params(
        ("id" = i64, Path, description = "The account's id"),
        ("session" = String, Path, description = "The session's `id`"),
    ),
    responses(
        (status = NO_CONTENT, description = "Ended"),
        (status = NOT_FOUND, description = "No such account, or no such session of it", body = ErrorBody),
    )
)]
pub async fn end_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    ApiPath((id, session_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = user_id(&id)?;
    session_control::end(&state.db, admin.actor(&client), id, session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the account (the admin's own current one stays, if it is theirs).
#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/sessions",
    summary = "End an account's sessions",
    description = "Admins only. Every session of the account; on your own account, the session \
        making the request stays.",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = OK, description = "How many ended", body = Ended),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
    )
)]
pub async fn end_all_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    session: Session,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Ended>, ApiError> {
    let id = user_id(&id)?;
    let keep = (id == admin.user.id).then(|| current(&session)).flatten();
    let ended = session_control::end_others(&state.db, admin.actor(&client), id, keep).await?;
    Ok(Json(Ended { ended }))
}

/// A rate-limit counter at or past its limit: attempts of `action` from `client` are
/// refused (429) until `ends_at`.
#[derive(Serialize, ToSchema)]
#[schema(as = Lockout)]
pub struct LockoutView {
    /// Names the lockout in `DELETE /api/admin/lockouts/{id}` (opaque).
    id: String,
    /// What is limited: `login`, `register`, `password_change`, `sso_link`, `api_key`, `setup`,
    /// `second_factor`, `metrics_token`.
    #[schema(value_type = String, example = "login")]
    action: &'static str,
    /// The client address counted (IPv6: the first address of its /64).
    client: String,
    /// `account` (that account from that address) or `address` (any account from it).
    scope: LockoutScope,
    /// The account name tried (as typed, lower-cased); null for an address's counter, or
    /// when no name was given.
    #[schema(required = true)]
    account: Option<String>,
    /// Failures counted in the window.
    failures: u32,
    /// Failures allowed in the window.
    limit: u32,
    /// When attempts are allowed again (RFC 3339, UTC).
    #[schema(format = DateTime)]
    ends_at: String,
}

/// What a lockout's counter counts: one account from one address, or the address.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum LockoutScope {
    Account,
    Address,
}

impl From<Lockout> for LockoutView {
    fn from(l: Lockout) -> Self {
        Self {
            id: l.id,
            action: l.action,
            client: l.client,
            scope: if l.per_account {
                LockoutScope::Account
            } else {
                LockoutScope::Address
            },
            account: l.account,
            failures: l.failures,
            limit: l.limit,
            ends_at: rfc3339(l.ends_at),
        }
    }
}

/// The lockouts in force.
#[derive(Serialize, ToSchema)]
pub struct LockoutList {
    lockouts: Vec<LockoutView>,
}

#[utoipa::path(
    get,
    path = "/api/admin/lockouts",
    summary = "Lockouts in force",
    description = "Admins only. The rate-limit counters at or past their limit.",
    responses((status = OK, description = "The lockouts", body = LockoutList))
)]
pub async fn lockouts(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<LockoutList>, ApiError> {
    let lockouts = state.limiter.lockouts().await?;
    Ok(Json(LockoutList {
        lockouts: lockouts.into_iter().map(LockoutView::from).collect(),
    }))
}

/// Lifts a lockout; answers it as it was.
#[utoipa::path(
    delete,
    path = "/api/admin/lockouts/{id}",
    summary = "Lift a lockout",
    description = "Admins only. Clears the counter: attempts are allowed again at once.",
    params(("id" = String, Path, description = "The lockout's `id`")),
    responses(
        (status = OK, description = "The lockout as it was", body = LockoutView),
        (status = NOT_FOUND, description = "No such lockout (or it ended already)", body = ErrorBody),
    )
)]
pub async fn lift(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LockoutView>, ApiError> {
    let lifted = state.limiter.lift(admin.actor(&client), &id).await?;
    Ok(Json(lifted.into()))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_mine,
    end_my_others,
    end_mine,
    list_of_user,
    end_all_of_user,
    end_of_user,
    lockouts,
    lift
))]
pub struct Doc;
