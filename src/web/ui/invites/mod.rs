//! Invite links: the admin's list with its create form, the link shown once and the
//! confirmation before a revoke (`admin`), and the sign-up page the link opens (`signup`),
//! with a password or a passkey (`passkey`).
//! Every form works without JavaScript; reads and writes are `service::invites`, as for the
//! JSON API.

mod admin;
mod passkey;
mod signup;

pub use admin::{confirm_revoke, create, list, revoke};
pub use passkey::{options as passkey_options, submit as passkey_submit};
pub use signup::{page, submit};

use crate::domain::invite::{Invite, InviteState};
use crate::web::ui::format_time;

/// A row of the invite list.
pub struct InviteRow {
    pub id: i64,
    /// The hints, or "anyone with the link".
    pub who: String,
    pub role: &'static str,
    pub groups: String,
    pub needs_approval: bool,
    pub state: &'static str,
    /// The badge class of the state (the existing status colours).
    pub badge: &'static str,
    /// What happened, for the state column ("by kim, 2026-12-02 10:00", "until …").
    pub state_detail: String,
    pub created: String,
    pub created_by: String,
    pub open: bool,
}

impl InviteRow {
    pub fn new(i: &Invite, now: i64) -> Self {
        let state = i.state(now);
        let state_detail = match state {
            InviteState::Open => format!("until {}", format_time(i.expires_at)),
            InviteState::Expired => format!("since {}", format_time(i.expires_at)),
            InviteState::Revoked => i.revoked_at.map(format_time).unwrap_or_default(),
            InviteState::Used => {
                let who = i.used_by.as_deref().unwrap_or("an account purged since");
                format!(
                    "by {who}, {}",
                    i.used_at.map(format_time).unwrap_or_default()
                )
            }
        };
        Self {
            id: i.id,
            who: who(i),
            role: i.role.as_str(),
            groups: i
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            needs_approval: i.needs_approval,
            state: state.as_str(),
            badge: match state {
                InviteState::Open => "badge-active",
                InviteState::Used => "badge-user",
                InviteState::Expired => "badge-disabled",
                InviteState::Revoked => "badge-rejected",
            },
            state_detail,
            created: format_time(i.created_at),
            created_by: i.created_by.clone().unwrap_or_default(),
            open: state == InviteState::Open,
        }
    }
}

/// Who an invite is for, as the pages say it.
fn who(i: &Invite) -> String {
    match (&i.username, &i.email) {
        (Some(u), Some(e)) => format!("{u} <{e}>"),
        (Some(u), None) => u.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => "anyone with the link".to_owned(),
    }
}
