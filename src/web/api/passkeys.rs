//! `/api/me/passkeys…`: your own passkeys — list, rename, remove. Adding one needs a browser
//! (the authenticator is reached through its WebAuthn API): `/account/passkeys`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::service::passkeys::{self, PasskeyView};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::identity::CurrentUser;

/// A passkey as the API shows it; times are RFC 3339 (UTC).
#[derive(Serialize, ToSchema)]
#[schema(as = Passkey)]
pub struct View {
    id: i64,
    /// The name its owner gave it (e.g. "Phone").
    name: String,
    /// When it was added, RFC 3339 (UTC).
    #[schema(format = DateTime)]
    created_at: String,
    /// The last sign-in with it, RFC 3339 (UTC); `null` if never used.
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
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

impl From<PasskeyView> for View {
    fn from(p: PasskeyView) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
        }
    }
}

/// Your passkeys.
#[derive(Serialize, ToSchema)]
#[schema(as = PasskeyList)]
pub struct List {
    /// Oldest first.
    passkeys: Vec<View>,
}

/// A passkey's new name.
#[derive(Deserialize, ToSchema)]
#[schema(as = PasskeyRename)]
pub struct RenameRequest {
    /// Not empty; at most 64 characters.
    #[serde(default)]
    #[schema(required = true)]
    name: String,
}

/// `GET /api/me/passkeys`.
#[utoipa::path(
    get,
    path = "/api/me/passkeys",
    summary = "Your passkeys",
    description = "Adding one needs a browser (the authenticator is reached through its \
        WebAuthn API): `/account/passkeys`.",
    responses((status = OK, description = "Your passkeys", body = List))
)]
pub async fn list_own(
    State(state): State<AppState>,
    me: CurrentUser,
) -> Result<Json<List>, ApiError> {
    let rows = passkeys::list(&state.db, me.user.id).await?;
    Ok(Json(List {
        passkeys: rows.into_iter().map(View::from).collect(),
    }))
}

/// `PATCH /api/me/passkeys/{id}` with `{"name": "…"}`.
#[utoipa::path(
    patch,
    path = "/api/me/passkeys/{id}",
    summary = "Rename one of your passkeys",
    params(("id" = i64, Path, description = "The passkey's id")),
    request_body = RenameRequest,
    responses(
        (status = NO_CONTENT, description = "Renamed"),
        (status = NOT_FOUND, description = "`NOT_FOUND`: you have no passkey with this id",
            body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: the name is empty \
            or too long (in `fields`)", body = ErrorBody),
    )
)]
pub async fn rename_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<StatusCode, ApiError> {
    let id = passkeys::parse_id(&id)?;
    passkeys::rename(&state.db, me.actor(&client), me.user.id, id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/me/passkeys/{id}`: refused (409 `LAST_SIGN_IN_METHOD`) for the last way in.
#[utoipa::path(
    delete,
    path = "/api/me/passkeys/{id}",
    summary = "Remove one of your passkeys",
    params(("id" = i64, Path, description = "The passkey's id")),
    responses(
        (status = NO_CONTENT, description = "Removed"),
        (status = NOT_FOUND, description = "`NOT_FOUND`: you have no passkey with this id",
            body = ErrorBody),
        (status = CONFLICT, description = "`LAST_SIGN_IN_METHOD`: it is your only way to sign \
            in (no password, no other passkey, no linked provider)", body = ErrorBody),
    )
)]
pub async fn remove_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let id = passkeys::parse_id(&id)?;
    passkeys::remove(&state.db, me.actor(&client), me.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_own, rename_own, remove_own))]
pub struct Doc;
