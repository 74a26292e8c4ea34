//! The audit log: append-only, written in the same transaction as the change it records.

use diesel::prelude::*;

use super::schema::audit_events;
use super::{Conn, DbError, now_ts};

/// One event to record. Never put a secret in any field.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub actor_id: Option<i64>,
    pub actor: &'a str,
    pub action: crate::domain::audit::AuditAction,
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
            audit_events::action.eq(e.action.as_str()),
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

/// Which events to list: one page, newest first.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Case-insensitive "contains" on the actor or the target (lower-cased by the caller).
    pub user: Option<String>,
    /// An exact action (`user.create`), or every action under a prefix ending in `.`
    /// (`login.`).
    pub action: Option<String>,
    /// Keyset cursor: only events older than this id.
    pub before: Option<i64>,
    pub limit: i64,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>);

/// Events matching `f`, newest first (by id: ids grow with time and break ties in `at`).
pub fn list(conn: &mut Conn, f: &Filter) -> Result<Vec<Event>, DbError> {
    use diesel::expression_methods::EscapeExpressionMethods;
    let mut query = audit_events::table
        .order(audit_events::id.desc())
        .into_boxed();
    if let Some(user) = f.user.as_deref().filter(|s| !s.is_empty()) {
        let p = super::users::like_pattern(user);
        query = query.filter(
            lower(audit_events::actor.nullable())
                .like(p.clone())
                .escape('\\')
                .or(lower(audit_events::target).like(p).escape('\\')),
        );
    }
    match f.action.as_deref() {
        Some("") | None => {}
        Some(prefix) if prefix.ends_with('.') => {
            let mut p = super::users::like_pattern(prefix);
            p.remove(0); // a prefix: no leading `%`
            query = query.filter(audit_events::action.like(p).escape('\\'));
        }
        Some(action) => query = query.filter(audit_events::action.eq(action.to_owned())),
    }
    if let Some(before) = f.before {
        query = query.filter(audit_events::id.lt(before));
    }
    Ok(query.limit(f.limit).load(conn)?)
}
