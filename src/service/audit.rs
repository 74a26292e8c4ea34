//! Reading the audit log, one page at a time, for the admin page and the API alike.

use super::ServiceError;
use crate::db::{DbPool, audit};

pub use crate::db::audit::Event;

/// Events per page.
pub const PAGE_SIZE: i64 = 50;

/// Every action Hallpass records, for the filter's choices. A value ending in `.` selects
/// every action under that prefix.
pub const KNOWN_ACTIONS: &[&str] = &[
    "identity.",
    "identity.link",
    "identity.unlink",
    "login.",
    "login.break_glass",
    "login.oidc",
    "login.password",
    "login.proxy",
    "password.change",
    "rate_limit.",
    "rate_limit.api_key",
    "rate_limit.login",
    "rate_limit.password_change",
    "rate_limit.register",
    "rate_limit.setup",
    "rate_limit.sso_link",
    "settings.",
    "settings.proxy_preset",
    "settings.sign_in",
    "settings.update",
    "setup.first_admin",
    "sso.",
    "sso.provider.create",
    "sso.provider.delete",
    "sso.provider.disable",
    "sso.provider.enable",
    "sso.provider.revert",
    "sso.provider.update",
    "sso.wipe",
    "user.",
    "user.approve",
    "user.create",
    "user.delete",
    "user.disable",
    "user.edit",
    "user.enable",
    "user.password_reset",
    "user.purge",
    "user.register",
    "user.reject",
    "user.restore",
    "user.update",
];

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
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub action: String,
    /// The `next` cursor of the previous page; kept as text so a bad value gets our message.
    #[serde(default)]
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
        Ok(Query {
            user: self.user.clone(),
            action: self.action.clone(),
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

    /// Every admin action is offered by the filter. The `match` stops compiling when a new
    /// action is added, so this list cannot silently fall behind.
    #[test]
    fn every_admin_action_is_a_filter_choice() {
        let all = [
            AdminAction::Edit,
            AdminAction::ResetPassword,
            AdminAction::Disable,
            AdminAction::Enable,
            AdminAction::Approve,
            AdminAction::Reject,
            AdminAction::Delete,
            AdminAction::Restore,
            AdminAction::Purge,
        ];
        for a in all {
            match a {
                AdminAction::Edit
                | AdminAction::ResetPassword
                | AdminAction::Disable
                | AdminAction::Enable
                | AdminAction::Approve
                | AdminAction::Reject
                | AdminAction::Delete
                | AdminAction::Restore
                | AdminAction::Purge => {}
            }
            assert!(KNOWN_ACTIONS.contains(&a.as_str()), "{}", a.as_str());
        }
        let mut sorted = KNOWN_ACTIONS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KNOWN_ACTIONS, "kept in order for the select");
    }
}
