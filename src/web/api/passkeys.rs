//! `/api/me/passkeys…`: your own passkeys — list, rename, remove. Adding one needs a browser
//! (the authenticator is reached through its WebAuthn API): `/account/passkeys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::service::passkeys::{self, PasskeyView};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::identity::CurrentUser;

/// A passkey as the API shows it; times are RFC 3339 (UTC).
#[derive(Serialize)]
pub struct View {
    id: i64,
    name: String,
    created_at: String,
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

#[derive(Serialize)]
pub struct List {
    passkeys: Vec<View>,
}

#[derive(Deserialize)]
pub struct RenameRequest {
    #[serde(default)]
    name: String,
}

/// `GET /api/me/passkeys`.
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
pub async fn rename_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameRequest>,
) -> Result<StatusCode, ApiError> {
    let id = passkeys::parse_id(&id)?;
    passkeys::rename(&state.db, me.actor(&client), me.user.id, id, &body.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/me/passkeys/{id}`: refused (409 `LAST_SIGN_IN_METHOD`) for the last way in.
pub async fn remove_own(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = passkeys::parse_id(&id)?;
    passkeys::remove(&state.db, me.actor(&client), me.user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
