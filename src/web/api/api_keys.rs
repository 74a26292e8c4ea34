//! `/api/me/api-keys…` (your own keys) and `/api/admin/…/api-keys` (anyone's, admins only).
//! The key itself appears only in the answer to `POST /api/me/api-keys`; no answer ever
//! carries its HMAC.

use crate::service::{Missing, Refusal};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::{ApiKey, NewApiKey};
use crate::service::{ServiceError, api_keys};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;

/// An API key as the API shows it: never the key itself (only its creation answers that).
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct KeyView {
    /// Names the key in `DELETE /api/me/api-keys/{id}` and `DELETE /api/admin/api-keys/{id}`.
    id: i64,
    /// The account the key acts as.
    user_id: i64,
    name: String,
    /// The first characters of the key (`hp_` and 6 more), to tell keys apart.
    #[schema(example = "hp_a1B2c3")]
    prefix: String,
    /// When it was made (RFC 3339, UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// When it was last used (RFC 3339, UTC, to the minute); null if never.
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    /// When it stops working (RFC 3339, UTC); null if never.
    #[schema(format = DateTime, required = true)]
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

/// An account's keys, oldest first.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyList)]
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
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
pub struct Created {
    #[serde(flatten)]
    view: KeyView,
    /// The key, to send as `Authorization: Bearer …`. Shown in this answer only: Hallpass
    /// keeps a keyed hash of it, never the key.
    #[schema(example = "hp_a1B2c3…")]
    key: String,
}

/// A key to make for yourself.
#[derive(Deserialize, ToSchema)]
#[schema(as = ApiKeyCreateRequest)]
pub struct CreateRequest {
    /// What the key is for, e.g. the script that uses it: 1–100 characters, no control
    /// characters. Missing or blank is refused (422).
    #[serde(default)]
    #[schema(example = "backup script")]
    name: String,
    /// Days until the key stops working (1–3650); null or missing: never.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<i64>,
}

/// Ids in paths: anything that is not a number names no key.
fn key_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::from(ServiceError::Refused(Refusal::NotFound(Missing::ApiKey))))
}

#[utoipa::path(
    get,
    path = "/api/me/api-keys",
    summary = "Your API keys",
    responses((status = OK, description = "The caller's keys, oldest first", body = KeyList))
)]
pub async fn list_own(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<KeyList>, ApiError> {
    let keys = api_keys::list_own(&state.db, me.user.id).await?;
    Ok(Json(keys.into()))
}

#[utoipa::path(
    post,
    path = "/api/me/api-keys",
    summary = "Make an API key for yourself",
    description = "The key acts as you, with your role and status, checked on every request. \
        The answer carries the key itself, once, with `Cache-Control: no-store`. The \
        break-glass account (the environment's) cannot have keys (409 `BREAK_GLASS_ACCOUNT`).",
    request_body = CreateRequest,
    responses(
        (status = CREATED, description = "The key, with the key itself this once", body = Created,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: `name` or \
            `expires_in_days` out of bounds (see `fields`); `BAD_REQUEST`: a field of the wrong \
            type", body = ErrorBody),
        (status = CONFLICT, description = "`BREAK_GLASS_ACCOUNT`: the environment's account \
            cannot have keys", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    delete,
    path = "/api/me/api-keys/{id}",
    summary = "Revoke one of your API keys",
    description = "It stops working at once. Someone else's key is answered as unknown (404).",
    params(("id" = i64, Path, description = "The key's `id`")),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such key of yours", body = ErrorBody),
    )
)]
pub async fn revoke_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = key_id(&id)?;
    api_keys::revoke_own(&state.db, me.actor(&client), &me.user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/admin/users/{id}/api-keys",
    summary = "An account's API keys",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = OK, description = "The account's keys, oldest first", body = KeyList),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
    )
)]
pub async fn list_for_user(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(user_id): ApiPath<String>,
) -> Result<Json<KeyList>, ApiError> {
    let user_id = user_id
        .parse()
        .map_err(|_| ApiError::from(ServiceError::from(Missing::Account)))?;
    let keys = api_keys::list_for_user(&state.db, user_id).await?;
    Ok(Json(keys.into()))
}

#[utoipa::path(
    delete,
    path = "/api/admin/api-keys/{id}",
    summary = "Revoke anyone's API key",
    description = "Admins only. The key stops working at once.",
    params(("id" = i64, Path, description = "The key's `id`")),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such key", body = ErrorBody),
    )
)]
pub async fn revoke_any(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = key_id(&id)?;
    api_keys::revoke_any(&state.db, admin.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_own, create_own, revoke_own, list_for_user, revoke_any))]
pub struct Doc;
