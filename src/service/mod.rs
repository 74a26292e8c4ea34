//! The only code that changes data. Each operation parses nothing (it receives domain types),
//! opens one transaction, checks the rules inside it, writes, and records an audit event.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod backup;
pub mod groups;
pub mod invites;
pub mod metrics;
pub mod passkeys;
pub mod passwords;
pub mod provisioning;
pub mod proxy;
pub mod rate_limit;
pub mod read_turns;
pub mod recovery;
pub mod session_control;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod stamped;
pub mod two_factor;
pub mod users;

use crate::db::DbError;
use crate::domain::FieldErrors;
pub use crate::domain::refusal::{Missing, Refusal, Revertible};

/// Errors of the service layer; the web layer maps each to one status and code
/// (`web::error::answer`) and renders it as a page or as JSON.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input broke a rule; messages are keyed by form field.
    #[error("invalid input: {}", .0.summary())]
    Validation(FieldErrors),
    /// A rule said no (see [`Refusal`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Too many failures from this client (or for this account from this client): answered
    /// `429` with `Retry-After`, before any work is done.
    #[error("{0}")]
    RateLimited(rate_limit::Limited),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
    /// Something that should not fail did (answered 500; the text goes to the log only).
    #[error("{0}")]
    Internal(&'static str),
}

impl From<crate::domain::policy::PolicyError> for ServiceError {
    fn from(p: crate::domain::policy::PolicyError) -> Self {
        ServiceError::Refused(Refusal::Policy(p))
    }
}

impl From<Missing> for ServiceError {
    fn from(m: Missing) -> Self {
        ServiceError::Refused(Refusal::NotFound(m))
    }
}

/// Who did something, for the audit log.
#[derive(Clone, Default)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub ip: Option<String>,
    /// The caller's own session, when a change to their account must keep it (see
    /// [`OwnSession`]); `None` for system actors and for callers without one.
    pub session: Option<std::sync::Arc<dyn OwnSession>>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("session", &self.session.is_some())
            .finish()
    }
}

/// The session a caller is using. Linking or unlinking an identity bumps the account's
/// `session_version`, which ends all its sessions; when the account is the caller's own,
/// the service keeps the caller's session by moving it to the new version after the
/// commit, so "your other sessions end, this one stays" holds for every front end.
#[async_trait::async_trait]
pub trait OwnSession: Send + Sync {
    /// Marks this session as signed in at `session_version`.
    async fn keep_at_version(&self, session_version: i64) -> Result<(), ServiceError>;
}

impl Actor {
    /// The same caller, with the session to keep when a change bumps their own version.
    #[must_use]
    pub fn keeping(mut self, session: impl OwnSession + 'static) -> Self {
        self.session = Some(std::sync::Arc::new(session));
        self
    }

    /// After a commit moved account `user_id` to `session_version`: keeps the caller's
    /// session when the account is theirs (their other sessions stay ended).
    pub(crate) async fn keep_own_session(
        &self,
        user_id: i64,
        session_version: i64,
    ) -> Result<(), ServiceError> {
        match &self.session {
            Some(s) if self.user_id == Some(user_id) => s.keep_at_version(session_version).await,
            _ => Ok(()),
        }
    }

    pub fn anonymous(ip: Option<String>) -> Self {
        Self {
            user_id: None,
            name: "anonymous".into(),
            ip,
            session: None,
        }
    }

    pub fn system(name: &str) -> Self {
        Self {
            user_id: None,
            name: name.into(),
            ip: None,
            session: None,
        }
    }
}
