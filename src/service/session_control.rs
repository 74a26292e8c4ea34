//! "Your sessions": the signed-in sessions of an account, and ending them — one, or every
//! one but the caller's. Both front ends (the `/account/sessions` page, the admin's view of
//! a user, and `/api/me/sessions`, `/api/admin/users/{id}/sessions`) call these, so the
//! rules and the audit trail live once.
//!
//! Ending a session deletes its row. That is a commit every process sees at its next request
//! (SQLite: the WAL-index stamp moves; PostgreSQL: the sessions trigger notifies), so the
//! session caches never serve an ended session again (tests/http/session_control.rs).

use crate::db::{self, DbPool, session_rows};
use crate::domain::audit::AuditAction;
use crate::domain::device::Device;

use super::audit;
use super::{Actor, Missing, Refusal, ServiceError};

/// One signed-in session as the list shows it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Names the session in "end" requests (the row key: a hash, not the cookie).
    pub id: String,
    /// Sign-in time (unix seconds).
    pub signed_in_at: i64,
    /// Last request seen, to the minute (unix seconds); `None` for sessions signed in before
    /// it was recorded.
    pub last_seen_at: Option<i64>,
    /// Client address at sign-in.
    pub ip: Option<String>,
    /// "Firefox on Linux" (see `domain::device`).
    pub device: String,
    pub user_agent: Option<String>,
    /// When it ends unless used again (unix seconds).
    pub expires_at: i64,
    /// The caller's own session.
    pub current: bool,
}

impl SessionInfo {
    fn from_row(row: session_rows::SessionRow, current: Option<&str>) -> Self {
        Self {
            current: current == Some(row.key.as_str()),
            device: Device::parse(row.user_agent.as_deref()).label(),
            signed_in_at: row.signed_in_at.unwrap_or(row.created_at),
            last_seen_at: row.last_seen_at,
            ip: row.ip,
            user_agent: row.user_agent,
            expires_at: row.expires_at / 1000,
            id: row.key,
        }
    }
}

/// The row key of the caller's own session (from its cookie's id), to mark it in the list
/// and to keep it when ending the others.
pub fn current_key(id: &tower_sessions::session::Id) -> String {
    session_rows::key_of(id)
}

/// The live sessions of `user_id`, most recently seen first; `current` marks the caller's.
pub async fn list(
    db: &DbPool,
    user_id: i64,
    current: Option<String>,
) -> Result<Vec<SessionInfo>, ServiceError> {
    let rows = db.run(move |c| session_rows::for_user(c, user_id)).await?;
    Ok(rows
        .into_iter()
        .map(|r| SessionInfo::from_row(r, current.as_deref()))
        .collect())
}

/// Ends the session `id` of `user_id` (audited). Another account's session, or one that
/// ended already, is [`Missing::Session`].
pub async fn end(db: &DbPool, actor: Actor, user_id: i64, id: String) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if !session_rows::end(conn, user_id, &id)? {
                return Err(ServiceError::Refused(Refusal::NotFound(Missing::Session)));
            }
            let target = username(conn, user_id)?;
            let short: String = id.chars().take(12).collect();
            audit::record(
                conn,
                &actor,
                AuditAction::SessionEnd,
                Some(&target),
                Some(&format!("session={short}")),
            )?;
            Ok(())
        })
    })
    .await
}

/// Ends every session of `user_id` except `keep` (the caller's own; `None`: all of them).
/// Audited with how many ended; returns that number.
pub async fn end_others(
    db: &DbPool,
    actor: Actor,
    user_id: i64,
    keep: Option<String>,
) -> Result<usize, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let n = match &keep {
                Some(k) => session_rows::end_others(conn, user_id, k)?,
                None => db::sessions::delete_for_user(conn, user_id)?,
            };
            let target = username(conn, user_id)?;
            audit::record(
                conn,
                &actor,
                AuditAction::SessionEndOthers,
                Some(&target),
                Some(&format!("ended={n}")),
            )?;
            Ok(n)
        })
    })
    .await
}

/// The account's username, or [`Missing::Account`].
fn username(conn: &mut db::Conn, user_id: i64) -> Result<String, ServiceError> {
    db::users::find_by_id(conn, user_id)?
        .map(|u| u.username)
        .ok_or(ServiceError::Refused(Refusal::NotFound(Missing::Account)))
}

/// The account's username, or [`Missing::Account`] (the admin's view of a user's sessions
/// answers 404 for an account that does not exist).
pub async fn account_name(db: &DbPool, user_id: i64) -> Result<String, ServiceError> {
    db.run(move |conn| username(conn, user_id)).await
}
