//! The edge where errors become responses: `ApiError` as `{"error":{"code","message"}}`,
//! `UiError` as an HTML error page. Server-side details are logged here, once, and never
//! sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::FieldErrors;
use crate::service::ServiceError;

/// An error answered to a JSON client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<FieldErrors>,
    /// Seconds for a `Retry-After` header (rate-limited answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Sign in first.",
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Something went wrong on the server.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(fields) = self.fields {
            error["fields"] = json!(fields);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(fields) => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "VALIDATION_FAILED",
                message: fields.summary(),
                fields: Some(fields),
                retry_after: None,
            },
            ServiceError::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                e.to_string(),
            ),
            ServiceError::AlreadySetUp => {
                Self::new(StatusCode::CONFLICT, "ALREADY_SET_UP", e.to_string())
            }
            ServiceError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such account.")
            }
            ServiceError::ApiKeyNotFound => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string())
            }
            ServiceError::RegistrationClosed => {
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint.")
            }
            ServiceError::Policy(p) => {
                Self::new(StatusCode::CONFLICT, policy_code(&p), p.to_string())
            }
            ServiceError::LocalLoginDisabled => {
                Self::new(StatusCode::FORBIDDEN, "LOCAL_LOGIN_DISABLED", e.to_string())
            }
            ServiceError::Refused { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            ServiceError::RateLimited(limited) => Self {
                retry_after: Some(limited.retry_after),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    limited.to_string(),
                )
            },
            ServiceError::Db(d) if d.is_client_input() => {
                tracing::info!(error = %d, "refused input the database cannot store");
                Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", UNSTORABLE)
            }
            ServiceError::Db(_) | ServiceError::Hash(_) => Self::internal(e),
        }
    }
}

/// The answer when the database refused text the edge check let through.
const UNSTORABLE: &str = "The request contains text that cannot be stored (a control character). Remove it and try again.";

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        let status = r.status();
        let status = if status.is_client_error() {
            status
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(status, "BAD_REQUEST", r.body_text())
    }
}

/// The API code of each policy refusal.
pub fn policy_code(p: &crate::domain::policy::PolicyError) -> &'static str {
    use crate::domain::policy::PolicyError as P;
    match p {
        P::CannotDisableSelf => "CANNOT_DISABLE_SELF",
        P::CannotDemoteSelf => "CANNOT_DEMOTE_SELF",
        P::CannotRejectSelf => "CANNOT_REJECT_SELF",
        P::CannotDeleteSelf => "CANNOT_DELETE_SELF",
        P::CannotPurgeSelf => "CANNOT_PURGE_SELF",
        P::LastActiveAdmin => "LAST_ACTIVE_ADMIN",
        P::PurgeNotConfirmed => "PURGE_NOT_CONFIRMED",
        P::PurgeNeedsDelete => "PURGE_NEEDS_DELETE",
    }
}

/// An error answered with an HTML page.
#[derive(Debug)]
pub enum UiError {
    NotFound,
    Forbidden(String),
    BadRequest(String),
    Conflict(String),
    /// Too many failed attempts: `429` with `Retry-After`.
    RateLimited(crate::service::rate_limit::Limited),
    Internal,
}

impl UiError {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        UiError::Internal
    }
}

impl From<ServiceError> for UiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Validation(f) => UiError::BadRequest(f.summary()),
            ServiceError::InvalidCredentials => UiError::Forbidden(e.to_string()),
            ServiceError::AlreadySetUp => UiError::BadRequest(e.to_string()),
            ServiceError::NotFound
            | ServiceError::ApiKeyNotFound
            | ServiceError::RegistrationClosed => UiError::NotFound,
            ServiceError::Policy(p) => UiError::Conflict(p.to_string()),
            ServiceError::LocalLoginDisabled => UiError::Forbidden(e.to_string()),
            ServiceError::Refused { message, .. } => UiError::Conflict(message),
            ServiceError::RateLimited(limited) => UiError::RateLimited(limited),
            ServiceError::Db(d) if d.is_client_input() => {
                tracing::info!(error = %d, "refused input the database cannot store");
                UiError::BadRequest(UNSTORABLE.to_owned())
            }
            ServiceError::Db(_) | ServiceError::Hash(_) => UiError::internal(e),
        }
    }
}

impl From<tower_sessions::session::Error> for UiError {
    fn from(e: tower_sessions::session::Error) -> Self {
        UiError::internal(format!("session store: {e}"))
    }
}

impl From<axum::extract::rejection::FormRejection> for UiError {
    fn from(r: axum::extract::rejection::FormRejection) -> Self {
        UiError::BadRequest(format!("The form could not be read: {}", r.body_text()))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            UiError::RateLimited(l) => Some(*l),
            _ => None,
        };
        let (status, title, message) = match self {
            UiError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address.".to_owned(),
            ),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            UiError::Conflict(m) => (StatusCode::CONFLICT, "Not possible", m),
            UiError::RateLimited(l) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                l.to_string(),
            ),
            UiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not finish this request. The details are in its log.".to_owned(),
            ),
        };
        let page = super::ui::errors::render(status, title, &message);
        match retry_after {
            Some(l) => with_retry_after(l, page),
            None => page,
        }
    }
}

/// Adds `Retry-After` to a rate-limited answer (pages that render their own 429 use it too).
pub fn with_retry_after(
    limited: crate::service::rate_limit::Limited,
    mut response: Response,
) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after));
    response
}

/// Unknown paths: JSON under `/api/`, a page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint.").into_response()
    } else {
        UiError::NotFound.into_response()
    }
}
