//! The edge where errors become responses: `ApiError` as `{"error":{"code","message"}}`,
//! `UiError` as an HTML error page. Server-side details are logged here, once, and never
//! sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::FieldErrors;
use crate::service::{Refusal, ServiceError};

/// The body of every JSON error; the OpenAPI document describes it from this type.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
struct ErrorDetail {
    /// Stable and machine-readable, e.g. `VALIDATION_FAILED`, `UNAUTHENTICATED`, `NOT_FOUND`.
    #[schema(value_type = String, example = "VALIDATION_FAILED")]
    code: &'static str,
    /// For people; its wording may change between versions.
    message: String,
    /// With `VALIDATION_FAILED`: each field's message, in the order they were found.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    fields: Option<FieldErrors>,
}

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
        Self::from(Refusal::Unauthenticated)
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
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The one status table: the HTTP status and API code of every service error. HTML pages
/// and JSON answers both take their status from here, so they cannot disagree.
pub fn answer(e: &ServiceError) -> (StatusCode, &'static str) {
    match e {
        ServiceError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED"),
        ServiceError::Refused(r) => refusal_answer(r),
        ServiceError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        ServiceError::Db(d) if d.is_client_input() => (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
        ServiceError::Db(_) | ServiceError::Hash(_) | ServiceError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        }
    }
}

/// The status and API code of each refusal.
pub fn refusal_answer(r: &Refusal) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match r {
        Refusal::Unauthenticated => (S::UNAUTHORIZED, "UNAUTHENTICATED"),
        Refusal::InvalidCredentials => (S::UNAUTHORIZED, "INVALID_CREDENTIALS"),
        Refusal::InvalidApiKey => (S::UNAUTHORIZED, "INVALID_API_KEY"),
        Refusal::LocalLoginDisabled => (S::FORBIDDEN, "LOCAL_LOGIN_DISABLED"),
        Refusal::InvalidSecondFactor => (S::UNAUTHORIZED, "INVALID_SECOND_FACTOR"),
        Refusal::InvalidPasskey => (S::UNAUTHORIZED, "INVALID_PASSKEY"),
        Refusal::InvalidMetricsToken => (S::UNAUTHORIZED, "METRICS_TOKEN_REQUIRED"),
        Refusal::PasskeysUnavailable(_) => (S::CONFLICT, "PASSKEYS_UNAVAILABLE"),
        Refusal::SecondStepRequired => (S::UNAUTHORIZED, "SECOND_STEP_REQUIRED"),
        Refusal::SecondFactorEnrolmentRequired => {
            (S::FORBIDDEN, "SECOND_FACTOR_ENROLMENT_REQUIRED")
        }
        Refusal::SecondFactorEnabled => (S::CONFLICT, "SECOND_FACTOR_ENABLED"),
        Refusal::SecondFactorRequired => (S::CONFLICT, "SECOND_FACTOR_REQUIRED"),
        Refusal::AccountPending => (S::FORBIDDEN, "ACCOUNT_PENDING"),
        Refusal::AccountRejected => (S::FORBIDDEN, "ACCOUNT_REJECTED"),
        Refusal::AdminOnly => (S::FORBIDDEN, "FORBIDDEN"),
        Refusal::ReadOnlyKey => (S::FORBIDDEN, "WRITE_ACCESS_REQUIRED"),
        Refusal::CsrfTokenInvalid => (S::FORBIDDEN, "CSRF_TOKEN_INVALID"),
        Refusal::CrossSiteRequest => (S::FORBIDDEN, "CROSS_SITE_REQUEST"),
        Refusal::AlreadySetUp => (S::CONFLICT, "ALREADY_SET_UP"),
        Refusal::SetupRequired => (S::SERVICE_UNAVAILABLE, "SETUP_REQUIRED"),
        Refusal::NotFound(_) => (S::NOT_FOUND, "NOT_FOUND"),
        Refusal::BreakGlassPassword
        | Refusal::BreakGlassApiKeys
        | Refusal::BreakGlassIdentities
        | Refusal::BreakGlassSecondFactor => (S::CONFLICT, "BREAK_GLASS_ACCOUNT"),
        Refusal::NothingToRevert(_) => (S::CONFLICT, "NOTHING_TO_REVERT"),
        Refusal::ProviderReadOnly(_) => (S::CONFLICT, "PROVIDER_READ_ONLY"),
        Refusal::ProviderIdTaken(_) => (S::CONFLICT, "PROVIDER_ID_TAKEN"),
        Refusal::LastSignInMethod(_) => (S::CONFLICT, "LAST_SIGN_IN_METHOD"),
        Refusal::AlreadyLinked(_) => (S::CONFLICT, "ALREADY_LINKED"),
        Refusal::IdentityTaken(_) => (S::CONFLICT, "IDENTITY_TAKEN"),
        // 409 like an environment provider: the caller may manage apps, the request is well
        // formed, and it is this app's state (declared in the file) that says no.
        Refusal::AppReadOnly(_) => (S::CONFLICT, "APP_READ_ONLY"),
        Refusal::Policy(p) => (S::CONFLICT, policy_code(p)),
        Refusal::GroupNameTaken(_) => (S::CONFLICT, "GROUP_NAME_TAKEN"),
        Refusal::AlreadyMember(_) => (S::CONFLICT, "ALREADY_MEMBER"),
        Refusal::AccountDeleted(_) => (S::CONFLICT, "ACCOUNT_DELETED"),
        // 410: the link existed and will never work again (unlike an unknown one, 404).
        Refusal::InviteClosed(state) => (S::GONE, invite_code(*state)),
        Refusal::InviteNotOpen(_) => (S::CONFLICT, "INVITE_NOT_OPEN"),
    }
}

/// The sentence of a refusal that a form shows inline (409: the request was fine, the state
/// of things said no), or `None` for every other error, which gets its own page.
pub fn conflict_message(e: &ServiceError) -> Option<String> {
    match e {
        ServiceError::Refused(r) if refusal_answer(r).0 == StatusCode::CONFLICT => {
            Some(r.to_string())
        }
        _ => None,
    }
}

/// The message a client sees for an error: the refusal's own sentence, never an internal
/// detail (those are logged here, once).
fn public_message(e: &ServiceError) -> String {
    match e {
        ServiceError::Validation(fields) => fields.summary(),
        ServiceError::Refused(r) => r.to_string(),
        ServiceError::RateLimited(l) => l.to_string(),
        ServiceError::Db(d) if d.is_client_input() => {
            tracing::info!(error = %d, "refused input the database cannot store");
            UNSTORABLE.to_owned()
        }
        ServiceError::Db(_) | ServiceError::Hash(_) | ServiceError::Internal(_) => {
            tracing::error!(error = %e, "internal error");
            INTERNAL_MESSAGE.to_owned()
        }
    }
}

const INTERNAL_MESSAGE: &str = "Something went wrong on the server.";

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let (status, code) = answer(&e);
        let message = public_message(&e);
        let retry_after = match &e {
            ServiceError::RateLimited(l) => Some(l.retry_after),
            _ => None,
        };
        let fields = match e {
            ServiceError::Validation(fields) => Some(fields),
            _ => None,
        };
        Self {
            status,
            code,
            message,
            fields,
            retry_after,
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        ApiError::from(ServiceError::Refused(r))
    }
}

/// The answer when the database refused text the edge check let through.
const UNSTORABLE: &str = "The request contains text that cannot be stored (a control character). Remove it and try again.";

/// A path segment that does not parse (`/api/admin/groups/abc`) names nothing: 404, as for
/// an id that does not exist.
impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        use axum::extract::rejection::PathRejection as P;
        match r {
            P::FailedToDeserializePathParams(e) => {
                use axum::extract::path::ErrorKind as K;
                let message = match e.kind() {
                    K::ParseErrorAtKey { key, value, .. } => {
                        format!("Not found: `{value}` is not a valid {key}.")
                    }
                    K::ParseErrorAtIndex { value, .. } | K::ParseError { value, .. } => {
                        format!("Not found: `{value}` is not a valid id.")
                    }
                    _ => format!("Not found: {}.", e.body_text()),
                };
                Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
            }
            other => Self::internal(other.body_text()),
        }
    }
}

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

/// The API code of an invite that can no longer be used.
fn invite_code(state: crate::domain::invite::InviteState) -> &'static str {
    use crate::domain::invite::InviteState as I;
    match state {
        I::Used => "INVITE_USED",
        I::Expired => "INVITE_EXPIRED",
        I::Revoked => "INVITE_REVOKED",
        I::Open => "INVITE_CLOSED",
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
    /// No such page (or a record the page is about).
    NotFound,
    /// The request itself could not be read (a malformed form or query).
    BadRequest(String),
    /// A service error, with the status of the one table ([`answer`]).
    Service(ServiceError),
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
        UiError::Service(e)
    }
}

impl From<Refusal> for UiError {
    fn from(r: Refusal) -> Self {
        UiError::Service(ServiceError::Refused(r))
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
        let (status, message, retry_after) = match self {
            UiError::NotFound => (
                StatusCode::NOT_FOUND,
                "There is nothing at this address.".to_owned(),
                None,
            ),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m, None),
            UiError::Service(e) => {
                let (status, _) = answer(&e);
                let retry_after = match &e {
                    ServiceError::RateLimited(l) => Some(*l),
                    _ => None,
                };
                let message = if status.is_server_error() {
                    public_message(&e);
                    INTERNAL_PAGE_MESSAGE.to_owned()
                } else {
                    public_message(&e)
                };
                (status, message, retry_after)
            }
            UiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_PAGE_MESSAGE.to_owned(),
                None,
            ),
        };
        let page = super::ui::errors::render(status, page_title(status), &message);
        match retry_after {
            Some(l) => with_retry_after(l, page),
            None => page,
        }
    }
}

const INTERNAL_PAGE_MESSAGE: &str =
    "The server could not finish this request. The details are in its log.";

/// The heading of an error page, by status.
fn page_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible",
        StatusCode::UNPROCESSABLE_ENTITY => "Check your input",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::SERVICE_UNAVAILABLE => "Not ready yet",
        s if s.is_server_error() => "Something went wrong",
        _ => "Bad request",
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
pub async fn not_found(surface: super::surface::Surface) -> Response {
    if surface.is_api() {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint.").into_response()
    } else {
        UiError::NotFound.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::PolicyError;
    use crate::service::{Missing, Revertible};

    fn samples() -> Vec<ServiceError> {
        let refusals = [
            Refusal::Unauthenticated,
            Refusal::InvalidCredentials,
            Refusal::InvalidApiKey,
            Refusal::LocalLoginDisabled,
            Refusal::AccountPending,
            Refusal::AdminOnly,
            Refusal::ReadOnlyKey,
            Refusal::CsrfTokenInvalid,
            Refusal::AlreadySetUp,
            Refusal::SetupRequired,
            Refusal::NotFound(Missing::Account),
            Refusal::BreakGlassApiKeys,
            Refusal::NothingToRevert(Revertible::Provider),
            Refusal::ProviderReadOnly(None),
            Refusal::AppReadOnly("Grafana".into()),
            Refusal::NotFound(Missing::App),
            Refusal::LastSignInMethod("x".into()),
            Refusal::AlreadyLinked("x".into()),
            Refusal::Policy(PolicyError::LastActiveAdmin),
            Refusal::NotFound(Missing::Group),
            Refusal::GroupNameTaken("Family".into()),
            Refusal::AlreadyMember("bob".into()),
            Refusal::AccountDeleted("bob".into()),
        ];
        let mut all: Vec<ServiceError> = refusals.into_iter().map(ServiceError::from).collect();
        all.push(ServiceError::Validation(
            crate::domain::FieldErrors::single("username", "bad"),
        ));
        all.push(ServiceError::Internal("boom"));
        all
    }

    /// The point of the one table: a page and a JSON answer to the same refusal carry the
    /// same status (they used to disagree: 403 vs 401 for bad credentials, 400 vs 409 for
    /// "already set up", 400 vs 422 for invalid input).
    #[test]
    fn pages_and_json_answer_the_same_status() {
        for (e, same) in samples().into_iter().zip(samples()) {
            let label = format!("{e:?}");
            let (status, _) = answer(&e);
            let api = ApiError::from(same).status;
            let page = UiError::from(e).into_response().status();
            assert_eq!(api, status, "{label}");
            assert_eq!(page, status, "{label}");
        }
    }

    #[test]
    fn internal_failures_are_a_generic_500() {
        let api = ApiError::from(ServiceError::Internal("the disk is on fire"));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(api.code, "INTERNAL");
        assert!(!api.message.contains("fire"));
    }
}
