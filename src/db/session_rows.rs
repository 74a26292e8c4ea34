//! The stored sessions of a person as "Your sessions" shows them, and the two writes that
//! screen makes: ending one session, ending all but one. Beside `sessions` (the store the
//! session layer uses on every request), which these never slow down.
//!
//! Sessions are named by their row key (the SHA-256 of the cookie's id, see `sessions`): a
//! copy of it cannot be turned back into a cookie, so showing it is harmless.

use diesel::prelude::*;
use tower_sessions::session::Id;

use super::schema::sessions;
use super::sessions::{key, now_ms};
use super::{Conn, DbError};

/// One live session of a user.
#[derive(Debug, Clone, Queryable)]
pub struct SessionRow {
    /// The row key (hex SHA-256 of the cookie's session id).
    pub key: String,
    /// When the row was made (unix seconds); the sign-in time of sessions signed in before
    /// `signed_in_at` was recorded.
    pub created_at: i64,
    pub signed_in_at: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// When the session ends unless used again (unix milliseconds).
    pub expires_at: i64,
}

/// The row key of the session with cookie id `id` (to mark the caller's own session).
pub fn key_of(id: &Id) -> String {
    key(id)
}

/// How many signed-in sessions have not expired (for `hallpass_sessions_active`): rows
/// that name a user and whose expiry is ahead. Sessions of visitors who only loaded a form
/// (no user) are not counted; expired rows waiting for the purge are not either.
pub fn count_signed_in(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.is_not_null())
        .filter(sessions::expires_at.gt(now_ms()))
        .count()
        .get_result(conn)?)
}

/// Every live session of `user_id`, most recently seen first.
pub fn for_user(conn: &mut Conn, user_id: i64) -> Result<Vec<SessionRow>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now_ms()))
        .select((
            sessions::id,
            sessions::created_at,
            sessions::signed_in_at,
            sessions::last_seen_at,
            sessions::ip,
            sessions::user_agent,
            sessions::expires_at,
        ))
        .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
        .load(conn)?)
}

/// Ends the session `key` of `user_id`; returns whether there was one (another user's key
/// ends nothing).
pub fn end(conn: &mut Conn, user_id: i64, key: &str) -> Result<bool, DbError> {
    let n = diesel::delete(
        sessions::table
            .filter(sessions::id.eq(key))
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Ends every session of `user_id` but `keep`; returns how many ended.
pub fn end_others(conn: &mut Conn, user_id: i64, keep: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::id.ne(keep)),
    )
    .execute(conn)?)
}

/// Records when each session was last seen (unix seconds), in one transaction. Only this
/// column is written: on PostgreSQL the sessions trigger ignores it, so nothing is notified
/// and no process flushes its caches; a session that ended meanwhile is simply not found.
pub fn touch_seen(conn: &mut Conn, seen: &[(Id, i64)]) -> Result<usize, DbError> {
    conn.transaction(|conn| {
        let mut n = 0;
        for (id, at) in seen {
            n += diesel::update(
                sessions::table
                    .filter(sessions::id.eq(key(id)))
                    .filter(sessions::user_id.is_not_null()),
            )
            .set(sessions::last_seen_at.eq(at))
            .execute(conn)?;
        }
        Ok::<_, DbError>(n)
    })
}
