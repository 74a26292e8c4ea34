//! `/api/me/api-keys…` (your own keys) and `/api/admin/…/api-keys` (anyone's, admins only).
//! The key itself appears only in the answer to `POST /api/me/api-keys`; no answer ever
//! carries its HMAC.

use crate::service::{Missing, Refusal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::domain::{ApiKey, NewApiKey};
use crate::service::{ServiceError, api_keys};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;

/// A key as the API shows it; times are RFC 3339 (UTC).
#[derive(Serialize)]
pub struct KeyView {
    id: i64,
    user_id: i64,
    name: String,
    /// The first characters of the key, to tell keys apart.
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ts.to_string())
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            user_id: k.user_id,
            name: k.name,
            prefix: k.prefix,
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
        }
    }
}

#[derive(Serialize)]
pub struct KeyList {
    api_keys: Vec<KeyView>,
}

impl From<Vec<ApiKey>> for KeyList {
    fn from(keys: Vec<ApiKey>) -> Self {
        Self {
            api_keys: keys.into_iter().map(KeyView::from).collect(),
        }
    }
}

/// The answer to a creation: the stored key plus, this once, the key itself.
#[derive(Serialize)]
pub struct Created {
    #[serde(flatten)]
    view: KeyView,
    key: String,
}

#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// Ids in paths: anything that is not a number names no key.
fn key_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(ServiceError::Refused(Refusal::NotFound(Missing::ApiKey))))
}

pub async fn list_own(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<KeyList>, ApiError> {
    let keys = api_keys::list_own(&state.db, me.user.id).await?;
    Ok(Json(keys.into()))
}

pub async fn create_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<Response, ApiError> {
    let new =
        NewApiKey::parse(&body.name, body.expires_in_days).map_err(ServiceError::Validation)?;
    let created =
        api_keys::create(&state.db, &state.secret, me.actor(&client), &me.user, new).await?;
    let body = Created {
        view: created.key.into(),
        key: created.secret,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

pub async fn revoke_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = key_id(&id)?;
    api_keys::revoke_own(&state.db, me.actor(&client), &me.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_for_user(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(user_id): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    let user_id = user_id
        .parse()
        .map_err(|_| ApiError::from(ServiceError::from(Missing::Account)))?;
    let keys = api_keys::list_for_user(&state.db, user_id).await?;
    Ok(Json(keys.into()))
}

pub async fn revoke_any(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = key_id(&id)?;
    api_keys::revoke_any(&state.db, admin.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
