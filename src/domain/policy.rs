//! The rules of user administration, in one place. Both the HTML and the JSON handlers reach
//! them through `service::admin`, which checks them inside the transaction that writes.

use super::audit::AuditAction;
use super::{Role, Status, User};

/// What an admin does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    Edit,
    ResetPassword,
    Disable,
    Enable,
    Approve,
    Reject,
    Delete,
    Restore,
    Purge,
}

impl AdminAction {
    pub const ALL: [AdminAction; 9] = [
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

    pub fn as_str(self) -> &'static str {
        self.audit().as_str()
    }

    /// What the audit log records for it.
    pub fn audit(self) -> AuditAction {
        match self {
            AdminAction::Edit => AuditAction::UserEdit,
            AdminAction::ResetPassword => AuditAction::UserPasswordReset,
            AdminAction::Disable => AuditAction::UserDisable,
            AdminAction::Enable => AuditAction::UserEnable,
            AdminAction::Approve => AuditAction::UserApprove,
            AdminAction::Reject => AuditAction::UserReject,
            AdminAction::Delete => AuditAction::UserDelete,
            AdminAction::Restore => AuditAction::UserRestore,
            AdminAction::Purge => AuditAction::UserPurge,
        }
    }
}

/// A rule that refused a change. Each has its own variant so the page can say what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("You cannot disable your own account.")]
    CannotDisableSelf,
    #[error("You cannot remove your own admin role.")]
    CannotDemoteSelf,
    #[error("You cannot reject your own account.")]
    CannotRejectSelf,
    #[error("You cannot delete your own account.")]
    CannotDeleteSelf,
    #[error("You cannot purge your own account.")]
    CannotPurgeSelf,
    #[error("This change would leave no active admin. Make another account an active admin first.")]
    LastActiveAdmin,
    #[error("Type the username exactly to confirm the purge.")]
    PurgeNotConfirmed,
    #[error("Only a deleted account can be purged. Delete it first.")]
    PurgeNeedsDelete,
}

/// How a caller proved who they are, as far as the role rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A browser: the session cookie, a forward-auth proxy's headers.
    Browser,
    /// `Authorization: Bearer` with an API key.
    ApiKey,
}

/// Whether a signed-in, active account may send state-changing requests this way.
///
/// The routes open to non-admins change only the caller's own sign-in: their password, API
/// keys and linked identities. Every role may manage those from the browser — a viewer who
/// signs in with SSO must be able to link it, and to unlink what they linked. A viewer's API
/// key is read-only, so a leaked key of a read-only account can change nothing.
pub fn may_write(role: Role, credential: Credential) -> bool {
    !(role == Role::Viewer && credential == Credential::ApiKey)
}

/// The state an account would have after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    pub status: Status,
    pub deleted: bool,
}

impl Standing {
    pub fn of(u: &User) -> Self {
        Self {
            role: u.role,
            status: u.status,
            deleted: u.deleted_at.is_some(),
        }
    }

    pub fn is_active_admin(self) -> bool {
        self.role == Role::Admin && self.status == Status::Active && !self.deleted
    }
}

/// Nobody disables, demotes, rejects, deletes or purges themselves.
pub fn check_self(
    actor_id: i64,
    target: &User,
    action: AdminAction,
    after: Standing,
) -> Result<(), PolicyError> {
    if actor_id != target.id {
        return Ok(());
    }
    match action {
        AdminAction::Disable => Err(PolicyError::CannotDisableSelf),
        AdminAction::Reject => Err(PolicyError::CannotRejectSelf),
        AdminAction::Delete => Err(PolicyError::CannotDeleteSelf),
        AdminAction::Purge => Err(PolicyError::CannotPurgeSelf),
        AdminAction::Edit if target.role == Role::Admin && after.role != Role::Admin => {
            Err(PolicyError::CannotDemoteSelf)
        }
        _ => Ok(()),
    }
}

/// There is always at least one active admin. `other_active_admins` counts active admins
/// other than `target`, read inside the same locked transaction as the write.
pub fn check_last_admin(
    target: &User,
    after: Standing,
    other_active_admins: i64,
) -> Result<(), PolicyError> {
    if target.is_active_admin() && !after.is_active_admin() && other_active_admins == 0 {
        Err(PolicyError::LastActiveAdmin)
    } else {
        Ok(())
    }
}

/// What an action does to an account's standing. Admins are always active: promoting a
/// pending account to admin activates it.
pub fn standing_after(before: Standing, action: AdminAction, new_role: Option<Role>) -> Standing {
    let mut s = before;
    match action {
        AdminAction::Edit => {
            if let Some(r) = new_role {
                s.role = r;
            }
        }
        AdminAction::Disable => s.status = Status::Disabled,
        AdminAction::Enable | AdminAction::Approve => s.status = Status::Active,
        AdminAction::Reject => s.status = Status::Rejected,
        AdminAction::Delete => {
            s.deleted = true;
            s.status = Status::Disabled;
        }
        AdminAction::Restore => s.deleted = false,
        AdminAction::ResetPassword | AdminAction::Purge => {}
    }
    if s.role == Role::Admin && !s.deleted && s.status != Status::Disabled {
        s.status = Status::Active;
    }
    s
}

/// Whether the change must end the account's sessions (and stop its API keys).
pub fn ends_sessions(action: AdminAction) -> bool {
    matches!(
        action,
        AdminAction::ResetPassword
            | AdminAction::Disable
            | AdminAction::Reject
            | AdminAction::Delete
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, role: Role, status: Status) -> User {
        User {
            id,
            username: format!("u{id}"),
            email: None,
            display_name: None,
            role,
            status,
            password_hash: None,
            session_version: 1,
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
            deleted_at: None,
        }
    }

    #[test]
    fn nobody_removes_themselves() {
        let me = user(1, Role::Admin, Status::Active);
        for (action, err) in [
            (AdminAction::Disable, PolicyError::CannotDisableSelf),
            (AdminAction::Reject, PolicyError::CannotRejectSelf),
            (AdminAction::Delete, PolicyError::CannotDeleteSelf),
            (AdminAction::Purge, PolicyError::CannotPurgeSelf),
        ] {
            let after = standing_after(Standing::of(&me), action, None);
            assert_eq!(check_self(1, &me, action, after), Err(err));
            assert_eq!(check_self(2, &me, action, after), Ok(()));
        }
        let demoted = standing_after(Standing::of(&me), AdminAction::Edit, Some(Role::User));
        assert_eq!(
            check_self(1, &me, AdminAction::Edit, demoted),
            Err(PolicyError::CannotDemoteSelf)
        );
    }

    #[test]
    fn the_last_active_admin_stays() {
        let admin = user(1, Role::Admin, Status::Active);
        let after = standing_after(Standing::of(&admin), AdminAction::Disable, None);
        assert_eq!(
            check_last_admin(&admin, after, 0),
            Err(PolicyError::LastActiveAdmin)
        );
        assert_eq!(check_last_admin(&admin, after, 1), Ok(()));
        let viewer = user(2, Role::Viewer, Status::Active);
        assert!(may_write(Role::Viewer, Credential::Browser));
        assert!(!may_write(Role::Viewer, Credential::ApiKey));
        assert!(may_write(Role::User, Credential::ApiKey));
        assert!(may_write(Role::Admin, Credential::ApiKey));
        let after = standing_after(Standing::of(&viewer), AdminAction::Disable, None);
        assert_eq!(check_last_admin(&viewer, after, 0), Ok(()));
    }

    #[test]
    fn admins_are_always_active() {
        let pending = user(3, Role::User, Status::Pending);
        let promoted = standing_after(Standing::of(&pending), AdminAction::Edit, Some(Role::Admin));
        assert_eq!(promoted.status, Status::Active);
    }
}
