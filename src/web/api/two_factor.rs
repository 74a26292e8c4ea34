//! The second factor in the admin API: the instance's requirement and the reset of someone's
//! second factor. (The two-step sign-in itself is in `auth`.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::FieldErrors;
use crate::service::ServiceError;
use crate::service::two_factor::{self, Requirement};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// The instance's second-factor settings: `{"required": "nobody" | "admins" | "everyone",
/// "sso_providers": ["id", …], "after_proxy": bool}`.
#[derive(Serialize, ToSchema)]
#[schema(as = TwoFactorSettings)]
pub struct RequirementView {
    /// Who must have a second factor; the others choose.
    #[schema(value_type = Requirement)]
    required: &'static str,
    /// The OpenID providers (ids) after whose sign-in Hallpass asks for its own second
    /// factor too (a provider does its own checks otherwise).
    sso_providers: Vec<String>,
    /// Whether a sign-in vouched for by a trusted forward-auth proxy asks for it too.
    after_proxy: bool,
}

impl From<two_factor::Settings> for RequirementView {
    fn from(s: two_factor::Settings) -> Self {
        Self {
            required: s.required.as_str(),
            sso_providers: s.sso_providers,
            after_proxy: s.after_proxy,
        }
    }
}

/// A change of the second-factor settings; absent `sso_providers` or `after_proxy` keep
/// their value.
#[derive(Deserialize, ToSchema)]
#[schema(as = TwoFactorSettingsUpdate)]
pub struct RequirementDto {
    /// Who must have a second factor.
    #[serde(default)]
    #[schema(value_type = Requirement, required = true)]
    required: String,
    /// The OpenID providers (ids) after whose sign-in Hallpass asks for its own second factor.
    #[serde(default)]
    sso_providers: Option<Vec<String>>,
    /// Whether a sign-in through a trusted forward-auth proxy asks for it too.
    #[serde(default)]
    after_proxy: Option<bool>,
}

/// `GET /api/admin/settings/two-factor`.
#[utoipa::path(
    get,
    path = "/api/admin/settings/two-factor",
    summary = "Who must have a second factor",
    description = "Admins only.",
    responses((status = OK, description = "The settings", body = RequirementView))
)]
pub async fn get_requirement(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<RequirementView>, ApiError> {
    Ok(Json(two_factor::settings(&state.db).await?.into()))
}

/// `PUT /api/admin/settings/two-factor`; answers the setting as saved.
#[utoipa::path(
    put,
    path = "/api/admin/settings/two-factor",
    summary = "Change who must have a second factor",
    description = "Admins only. People who must and have none are asked to set one up at \
        their next sign-in (a JSON sign-in answers `403 SECOND_FACTOR_ENROLMENT_REQUIRED`).",
    request_body = RequirementDto,
    responses(
        (status = OK, description = "The settings as saved", body = RequirementView),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: `required` is not \
            one of `nobody`, `admins`, `everyone` (in `fields`)", body = ErrorBody),
    )
)]
pub async fn put_requirement(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<RequirementDto>,
) -> Result<Json<RequirementView>, ApiError> {
    let Some(new) = Requirement::parse(&body.required) else {
        let e = FieldErrors::single("required", "One of: nobody, admins, everyone.");
        return Err(ServiceError::Validation(e).into());
    };
    let kept = two_factor::settings(&state.db).await?;
    let settings = two_factor::Settings {
        required: new,
        sso_providers: body.sso_providers.unwrap_or(kept.sso_providers),
        after_proxy: body.after_proxy.unwrap_or(kept.after_proxy),
    };
    two_factor::set_settings(&state.db, me.actor(&client), settings).await?;
    Ok(Json(two_factor::settings(&state.db).await?.into()))
}

/// `DELETE /api/admin/users/{id}/two-factor`: removes their second factors (the authenticator
/// app, every passkey) and ends their sessions (audited as `two_factor.reset`). `404` when
/// they have none; `409` when their passkeys are their only way in.
#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/two-factor",
    summary = "Remove someone's second factors",
    description = "Admins only. For someone who lost their authenticator and recovery codes, or \
        their passkey: the authenticator secret, the recovery codes and every passkey are \
        removed, and their sessions end. Refused when the passkeys are the account's only way \
        in (no password, no linked identity): set a password first.",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = NO_CONTENT, description = "Removed; their sessions have ended"),
        (status = NOT_FOUND, description = "`NOT_FOUND`: no account with this id, or it has \
            no second factor", body = ErrorBody),
        (status = CONFLICT, description = "`LAST_SIGN_IN_METHOD`: its passkeys are its only way \
            in", body = ErrorBody),
    )
)]
pub async fn reset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    two_factor::reset(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_requirement, put_requirement, reset))]
pub struct Doc;
