//! The audit log: append-only, written in the same transaction as the change it records.

use diesel::prelude::*;

use super::schema::audit_events;
use super::{Conn, DbError, now_ts};

/// One event to record. Never put a secret in any field.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

/// A recorded event.
#[derive(Debug, Clone, Queryable)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

pub fn insert(conn: &mut Conn, e: &NewEvent<'_>) -> Result<(), DbError> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::at.eq(now_ts()),
            audit_events::actor_id.eq(e.actor_id),
            audit_events::actor.eq(e.actor),
            audit_events::action.eq(e.action),
            audit_events::target.eq(e.target),
            audit_events::ip.eq(e.ip),
            audit_events::outcome.eq(e.outcome),
            audit_events::detail.eq(e.detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// Newest first.
pub fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<Event>, DbError> {
    Ok(audit_events::table
        .order(audit_events::id.desc())
        .limit(limit)
        .load(conn)?)
}
