//! The second factor in the admin API: the instance's requirement and the reset of someone's
//! second factor. (The two-step sign-in itself is in `auth`.)

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::domain::FieldErrors;
use crate::service::ServiceError;
use crate::service::two_factor::{self, Requirement};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

/// `{"required": "nobody" | "admins" | "everyone", "sso_providers": ["id", …],
/// "after_proxy": bool}`; a PUT without `sso_providers` or `after_proxy` keeps them.
#[derive(Serialize, Deserialize)]
pub struct RequirementDto {
    #[serde(default)]
    required: String,
    #[serde(default)]
    sso_providers: Option<Vec<String>>,
    #[serde(default)]
    after_proxy: Option<bool>,
}

impl From<two_factor::Settings> for RequirementDto {
    fn from(s: two_factor::Settings) -> Self {
        Self {
            required: s.required.as_str().to_owned(),
            sso_providers: Some(s.sso_providers),
            after_proxy: Some(s.after_proxy),
        }
    }
}

/// `GET /api/admin/settings/two-factor`.
pub async fn get_requirement(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<RequirementDto>, ApiError> {
    Ok(Json(two_factor::settings(&state.db).await?.into()))
}

/// `PUT /api/admin/settings/two-factor`; answers the setting as saved.
pub async fn put_requirement(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<RequirementDto>,
) -> Result<Json<RequirementDto>, ApiError> {
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

/// `DELETE /api/admin/users/{id}/two-factor`: removes their second factor and ends their
/// sessions (audited as `two_factor.reset`). `404` when they have none.
pub async fn reset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    two_factor::reset(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
