//! The audit event about refused attempts: the first refusal of a window, or a summary of
//! the later ones.

use super::Action;

/// Which limit refused: the client IP's, or the account + IP's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Ip,
    Account,
}

/// One audit event about refused attempts.
#[derive(Debug, Clone)]
pub(super) struct Report {
    pub(super) action: Action,
    pub(super) scope: Scope,
    pub(super) actor_id: Option<i64>,
    pub(super) actor: String,
    pub(super) target: Option<String>,
    pub(super) ip: String,
    /// The limit and the window, e.g. `10 failures per 15m`.
    pub(super) limit: String,
    /// Attempts refused that this event reports.
    pub(super) refused: u64,
    /// The first refusal of the window (written at once) rather than a later summary.
    pub(super) first: bool,
}

impl Report {
    pub(super) fn detail(&self) -> String {
        let scope = match self.scope {
            Scope::Ip => "ip",
            Scope::Account => "account",
        };
        if self.first {
            format!("limit={scope} ({}); refused=1", self.limit)
        } else {
            format!(
                "limit={scope} ({}); refused={} more since the last event",
                self.limit, self.refused
            )
        }
    }
}
