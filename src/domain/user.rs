//! Users, roles and account status.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an account stands; only `Active` accounts use the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Active,
    Rejected,
    Disabled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Rejected => "rejected",
            Status::Disabled => "disabled",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Status::Pending),
            "active" => Ok(Status::Active),
            "rejected" => Ok(Status::Rejected),
            "disabled" => Ok(Status::Disabled),
            other => Err(format!("unknown status {other:?}")),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user. `password_hash` stays inside the service layer: nothing renders it, the
/// type has no `Serialize`, so it cannot end up in a JSON answer or a session by mistake, and
/// `Debug` (what a log line or a test failure prints) shows only whether there is one.
#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub role: Role,
    pub status: Status,
    pub password_hash: Option<String>,
    pub session_version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: Option<i64>,
    /// Set when an admin deleted the account (soft delete: it can be restored).
    pub deleted_at: Option<i64>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("status", &self.status)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "[REDACTED]"),
            )
            .field("session_version", &self.session_version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_login_at", &self.last_login_at)
            .field("deleted_at", &self.deleted_at)
            .finish()
    }
}

impl User {
    /// A session made at `session_version` still speaks for this user: the account is
    /// active and nothing (password change, disable, reset) has bumped the version since.
    pub fn accepts_session(&self, session_version: i64) -> bool {
        self.may_sign_in() && self.session_version == session_version
    }

    /// Pending and rejected accounts may sign in (to see where they stand); disabled and
    /// deleted ones may not.
    pub fn may_sign_in(&self) -> bool {
        self.deleted_at.is_none()
            && matches!(
                self.status,
                Status::Active | Status::Pending | Status::Rejected
            )
    }

    /// An active, not deleted admin: the kind of account that must always exist.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.status == Status::Active && self.deleted_at.is_none()
    }

    /// The name to greet the user with.
    pub fn display(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, Status, User};

    #[test]
    fn debug_never_prints_the_password_hash() {
        let user = User {
            id: 1,
            username: "alice".into(),
            email: None,
            display_name: None,
            role: Role::User,
            status: Status::Active,
            password_hash: Some("$argon2id$v=19$secret-hash".into()),
            session_version: 0,
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
            deleted_at: None,
        };
        let shown = format!("{user:?}");
        assert!(!shown.contains("argon2id"), "{shown}");
        assert!(
            shown.contains("[REDACTED]") && shown.contains("alice"),
            "{shown}"
        );
    }
}
