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
pub mod settings;
pub mod setup;
pub mod sso;

use crate::db::DbError;
use crate::domain::FieldErrors;

/// Errors of the service layer; the web layer turns each into a page or a JSON error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input broke a rule; messages are keyed by form field.
    #[error("invalid input: {}", .0.summary())]
    Validation(FieldErrors),
    /// Unknown account, wrong password or an account that may not sign in: one answer for all.
    #[error("Invalid username or password.")]
    InvalidCredentials,
    /// The first admin exists already.
    #[error("Hallpass is already set up.")]
    AlreadySetUp,
    /// No such account.
    #[error("Not found.")]
    NotFound,
    /// No such API key (or it belongs to someone else).
    #[error("No such API key.")]
    ApiKeyNotFound,
    /// Self-registration is switched off (the page and the form then do not exist).
    #[error("Registration is closed.")]
    RegistrationClosed,
    /// Password sign-in is switched off for the instance (single sign-on only).
    #[error("Password sign-in is turned off here: sign in with single sign-on.")]
    LocalLoginDisabled,
    /// A single sign-on rule refused the change; `code` is the API error code.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// A rule of user administration refused the change.
    #[error(transparent)]
    Policy(#[from] crate::domain::policy::PolicyError),
    /// Too many failures from this client (or for this account from this client): answered
    /// `429` with `Retry-After`, before any work is done.
    #[error("{0}")]
    RateLimited(rate_limit::Limited),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] passwords::HashError),
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
