//! The only code that changes data. Each operation parses nothing (it receives domain types),
//! opens one transaction, checks the rules inside it, writes, and records an audit event.

pub mod accounts;
pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod passwords;
pub mod proxy;
pub mod rate_limit;
pub mod recovery;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
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
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn anonymous(ip: Option<String>) -> Self {
        Self {
            user_id: None,
            name: "anonymous".into(),
            ip,
        }
    }

    pub fn system(name: &str) -> Self {
        Self {
            user_id: None,
            name: name.into(),
            ip: None,
        }
    }
}
