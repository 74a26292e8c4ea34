//! `/api/me/sessions…` (your own sessions), `/api/admin/users/{id}/sessions…` (anyone's,
//! admins only) and `/api/admin/lockouts…`: the JSON mirror of "Your sessions" and the
//! lockout view, over the same service calls as the pages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use tower_sessions::Session;

use crate::service::rate_limit::Lockout;
use crate::service::session_control::{self, SessionInfo};
use crate::service::{Missing, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
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

/// A session as the API shows it; times are RFC 3339 (UTC).
#[derive(Serialize)]
pub struct SessionView {
    /// Names the session in `DELETE …/sessions/{id}`.
    id: String,
    device: String,
    user_agent: Option<String>,
    ip: Option<String>,
    signed_in_at: String,
    last_seen_at: Option<String>,
    expires_at: String,
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

#[derive(Serialize)]
pub struct SessionList {
    sessions: Vec<SessionView>,
}

#[derive(Serialize)]
pub struct Ended {
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

pub async fn list_mine(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<Json<SessionList>, ApiError> {
    listing(&state, me.user.id, &session).await
}

pub async fn end_mine(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    session_control::end(&state.db, me.actor(&client), me.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session but the caller's (an API key has none: then every session ends).
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

pub async fn list_of_user(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<SessionList>, ApiError> {
    let id = user_id(&id)?;
    session_control::account_name(&state.db, id).await?;
    listing(&state, id, &session).await
}

pub async fn end_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    Path((id, session_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = user_id(&id)?;
    session_control::end(&state.db, admin.actor(&client), id, session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the account (the admin's own current one stays, if it is theirs).
pub async fn end_all_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    session: Session,
    Path(id): Path<String>,
) -> Result<Json<Ended>, ApiError> {
    let id = user_id(&id)?;
    let keep = (id == admin.user.id).then(|| current(&session)).flatten();
    let ended = session_control::end_others(&state.db, admin.actor(&client), id, keep).await?;
    Ok(Json(Ended { ended }))
}

/// A lockout as the API shows it.
#[derive(Serialize)]
pub struct LockoutView {
    /// Names the lockout in `DELETE /api/admin/lockouts/{id}`.
    id: String,
    action: &'static str,
    client: String,
    /// `account` (the account from that address) or `address` (any account from it).
    scope: &'static str,
    account: Option<String>,
    failures: u32,
    limit: u32,
    ends_at: String,
}

impl From<Lockout> for LockoutView {
    fn from(l: Lockout) -> Self {
        Self {
            id: l.id,
            action: l.action,
            client: l.client,
            scope: if l.per_account { "account" } else { "address" },
            account: l.account,
            failures: l.failures,
            limit: l.limit,
            ends_at: rfc3339(l.ends_at),
        }
    }
}

#[derive(Serialize)]
pub struct LockoutList {
    lockouts: Vec<LockoutView>,
}

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
pub async fn lift(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<LockoutView>, ApiError> {
    let lifted = state.limiter.lift(admin.actor(&client), &id).await?;
    Ok(Json(lifted.into()))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
