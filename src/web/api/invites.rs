//! `/api/admin/invites…`: invite links for scripts. Same rules, messages and audit events
//! as `/admin/invites`, because both call `service::invites`. The link (and its token) is in
//! the creating answer only.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiJson;
use crate::domain::invite::{Invite, InviteFields, InviteState, NewInvite};
use crate::service::{ServiceError, invites};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

/// An invite with its state now.
#[derive(Serialize)]
pub struct InviteDto {
    #[serde(flatten)]
    invite: Invite,
    state: InviteState,
}

impl From<Invite> for InviteDto {
    fn from(invite: Invite) -> Self {
        Self {
            state: invite.state(invites::now()),
            invite,
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
) -> Result<Json<serde_json::Value>, ApiError> {
    let all: Vec<InviteDto> = invites::list(&state.db)
        .await?
        .into_iter()
        .map(InviteDto::from)
        .collect();
    Ok(Json(json!({ "invites": all })))
}

pub async fn get_one(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<InviteDto>, ApiError> {
    Ok(Json(invites::get(&state.db, id).await?.into()))
}

/// Every field optional: `{}` invites anyone as a `user` for 7 days.
#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    groups: Vec<i64>,
    #[serde(default)]
    expires_in_days: Option<i64>,
    #[serde(default)]
    needs_approval: bool,
}

/// The new invite, its token and its link: the only time either is shown.
#[derive(Serialize)]
pub struct Created {
    invite: InviteDto,
    token: String,
    url: String,
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, [(&'static str, &'static str); 1], Json<Created>), ApiError> {
    let new = NewInvite::parse(InviteFields {
        email: body.email.as_deref().unwrap_or(""),
        username: body.username.as_deref().unwrap_or(""),
        role: body.role.as_deref().unwrap_or("user"),
        groups: body.groups,
        expires_in_days: body.expires_in_days,
        needs_approval: body.needs_approval,
    })
    .map_err(ServiceError::Validation)?;
    let created = invites::create(&state.db, &state.secret, me.actor(&client), new).await?;
    let base = crate::web::sso_flow::public_base(&state, &headers, &client);
    let body = Created {
        url: format!("{base}/invite/{}", created.token),
        token: created.token,
        invite: created.invite.into(),
    };
    Ok((
        StatusCode::CREATED,
        [("cache-control", "no-store")],
        Json(body),
    ))
}

/// Revokes an open invite; it stays in the list as `revoked`.
pub async fn revoke(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    invites::revoke(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
