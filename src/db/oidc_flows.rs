//! Queries on `oidc_flows`: single sign-on round trips that were started and have not come
//! back yet. Keys arrive hashed (the service layer hashes `state` and the session binding),
//! so the table holds no state a browser could present.

use diesel::prelude::*;

use super::schema::oidc_flows as f;
use super::{Conn, DbError};

/// One pending flow as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct FlowRow {
    pub state_hash: String,
    pub binding: String,
    pub provider: String,
    pub fingerprint: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub purpose: String,
    pub link_user_id: Option<i64>,
    pub next: String,
    pub redirect_uri: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a new flow, drops every expired one (of any browser), and keeps only the newest
/// `max_per_binding` flows of this browser, in one transaction.
pub fn insert(
    conn: &mut Conn,
    row: &FlowRow,
    max_per_binding: usize,
    now: i64,
) -> Result<(), DbError> {
    conn.transaction(|conn| insert_trimmed(conn, row, max_per_binding, now))
}

fn insert_trimmed(
    conn: &mut Conn,
    row: &FlowRow,
    max_per_binding: usize,
    now: i64,
) -> Result<(), DbError> {
    purge_expired_at(conn, now)?;
    diesel::insert_into(f::table)
        .values((
            f::state_hash.eq(&row.state_hash),
            f::binding.eq(&row.binding),
            f::provider.eq(&row.provider),
            f::fingerprint.eq(&row.fingerprint),
            f::nonce.eq(&row.nonce),
            f::pkce_verifier.eq(&row.pkce_verifier),
            f::purpose.eq(&row.purpose),
            f::link_user_id.eq(row.link_user_id),
            f::next.eq(&row.next),
            f::redirect_uri.eq(&row.redirect_uri),
            f::created_at.eq(row.created_at),
            f::expires_at.eq(row.expires_at),
        ))
        .execute(conn)?;
    // A handful of rows per browser at most: trimming in Rust keeps the SQL portable.
    let older: Vec<String> = f::table
        .filter(f::binding.eq(&row.binding))
        .order((f::created_at.desc(), f::expires_at.desc()))
        .select(f::state_hash)
        .load::<String>(conn)?
        .into_iter()
        .skip(max_per_binding)
        .collect();
    if !older.is_empty() {
        diesel::delete(f::table.filter(f::state_hash.eq_any(&older))).execute(conn)?;
    }
    Ok(())
}

/// Consumes the flow of `state_hash` started by `binding`: one DELETE … RETURNING, so of
/// several concurrent callers exactly one gets the row (PostgreSQL makes the others wait for
/// the row lock and then finds it gone; SQLite runs writers one at a time).
pub fn take(conn: &mut Conn, state_hash: &str, binding: &str) -> Result<Option<FlowRow>, DbError> {
    let mut rows = diesel::delete(
        f::table
            .filter(f::state_hash.eq(state_hash))
            .filter(f::binding.eq(binding)),
    )
    .returning(f::all_columns)
    .get_results::<FlowRow>(conn)?;
    Ok(rows.pop())
}

/// Deletes the flows that expired; returns how many.
pub fn purge_expired(conn: &mut Conn) -> Result<usize, DbError> {
    purge_expired_at(conn, super::now_ts())
}

fn purge_expired_at(conn: &mut Conn, now: i64) -> Result<usize, DbError> {
    Ok(diesel::delete(f::table.filter(f::expires_at.le(now))).execute(conn)?)
}
