//! Reading the audit log, one page at a time, for the admin page and the API alike.

use super::{Actor, ServiceError};
use crate::db::{Conn, DbError, DbPool, audit};
pub use crate::domain::audit::AuditAction;

pub use crate::db::audit::Event;

/// Events per page.
pub const PAGE_SIZE: i64 = 50;

/// The filter's choices: every action Hallpass records and each group of them (a value
/// ending in `.` selects every action under that prefix), derived from [`AuditAction`].
pub static KNOWN_ACTIONS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(AuditAction::filter_choices);

/// Records a successful change by `actor`, inside the caller's transaction: the one way the
/// service layer writes an audit event (failed sign-ins, which have no actor, write theirs
/// with [`audit::insert`]).
pub fn record(
    conn: &mut Conn,
    actor: &Actor,
    action: AuditAction,
    target: Option<&str>,
    detail: Option<&str>,
) -> Result<(), DbError> {
    audit::insert(
        conn,
        &audit::NewEvent {
            actor_id: actor.user_id,
            actor: &actor.name,
            action,
            target,
            ip: actor.ip.as_deref(),
            outcome: "success",
            detail,
        },
    )
}

/// What the caller asked for; empty strings mean "no filter".
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Case-insensitive "contains" on the actor or the target.
    pub user: String,
    /// An exact action, or a prefix ending in `.`.
    pub action: String,
    /// Only events older than this id (the `next` cursor of the previous page).
    pub before: Option<i64>,
}

/// The query string both front ends accept (`/admin/audit?…`, `GET /api/admin/audit?…`),
/// parsed in one place so a bad cursor gets the same message from either.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events whose actor or target contains this text (case-insensitive).
    #[serde(default)]
    pub user: String,
    /// Only this action (e.g. `user.disable`), or a group of them: `login.*` (or `login.`).
    #[serde(default)]
    pub action: String,
    /// The `next` cursor of the previous page: only events older than this event id.
    // Kept as text so a bad value gets our message.
    #[serde(default)]
    #[param(value_type = i64)]
    pub before: String,
}

impl AuditParams {
    /// The service query, or a message when the cursor is not a number.
    pub fn to_query(&self) -> Result<Query, &'static str> {
        let before = match self.before.trim() {
            "" => None,
            s => Some(
                s.parse::<i64>()
                    .map_err(|_| "The page cursor `before` must be an event id.")?,
            ),
        };
        // `login.*` is how a group reads in the filter's list (and how people write it):
        // it means the prefix `login.`.
        let action = self.action.trim();
        let action = action
            .strip_suffix(".*")
            .map_or(action, |group| &action[..group.len() + 1]);
        Ok(Query {
            user: self.user.clone(),
            action: action.to_owned(),
            before,
        })
    }
}

/// One page of events, newest first, and the cursor of the next (older) page.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<Event>,
    pub next: Option<i64>,
}

/// Loads one page: asks for one row more than a page to know whether an older page exists.
pub async fn page(db: &DbPool, q: &Query) -> Result<Page, ServiceError> {
    let filter = audit::Filter {
        user: Some(q.user.trim().to_lowercase()).filter(|s| !s.is_empty()),
        action: Some(q.action.trim().to_owned()).filter(|s| !s.is_empty()),
        before: q.before,
        limit: PAGE_SIZE + 1,
    };
    let mut events = db.run(move |conn| audit::list(conn, &filter)).await?;
    let more = events.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page { events, next })
}

#[cfg(test)]
mod tests {
    use super::KNOWN_ACTIONS;
    use crate::domain::policy::AdminAction;

    /// Every admin action is offered by the filter.
    #[test]
    fn every_admin_action_is_a_filter_choice() {
        for a in AdminAction::ALL {
            assert!(KNOWN_ACTIONS.contains(&a.audit().as_str()), "{a:?}");
        }
        let mut sorted = KNOWN_ACTIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, *KNOWN_ACTIONS, "kept in order for the select");
    }
}
