//! `/api/admin/groups…`: groups and their members for scripts. Same rules, messages and
//! audit events as `/admin/groups`, because both call `service::groups`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiJson;
use crate::domain::FieldErrors;
use crate::domain::groups::{Group, GroupInput, Member};
use crate::service::ServiceError;
use crate::service::groups::{self, MemberRef};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
) -> Result<Json<serde_json::Value>, ApiError> {
    let groups = groups::list(&state.db).await?;
    Ok(Json(json!({ "groups": groups })))
}

/// One group and the apps whose rules name it.
#[derive(Serialize)]
pub struct GroupDto {
    #[serde(flatten)]
    group: Group,
    apps: Vec<String>,
}

pub async fn get_one(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<GroupDto>, ApiError> {
    let d = groups::detail(&state.db, id).await?;
    Ok(Json(GroupDto {
        group: d.group,
        apps: d.apps,
    }))
}

#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Group>), ApiError> {
    let input =
        GroupInput::parse(&body.name, &body.description).map_err(ServiceError::Validation)?;
    let group = groups::create(&state.db, me.actor(&client), input).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// What a PATCH changes; a field left out keeps its value (`"description": ""` clears it).
#[derive(Deserialize)]
pub struct PatchRequest {
    name: Option<String>,
    description: Option<String>,
}

pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PatchRequest>,
) -> Result<Json<Group>, ApiError> {
    let current = groups::get(&state.db, id).await?;
    let name = body.name.as_deref().unwrap_or(&current.name);
    let description = body
        .description
        .as_deref()
        .or(current.description.as_deref())
        .unwrap_or("");
    let input = GroupInput::parse(name, description).map_err(ServiceError::Validation)?;
    Ok(Json(
        groups::update(&state.db, me.actor(&client), id, input).await?,
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    groups::delete(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let members: Vec<Member> = groups::detail(&state.db, id).await?.members;
    Ok(Json(json!({ "members": members })))
}

/// `{"user_id": N}` or `{"username": "…"}`.
#[derive(Deserialize)]
pub struct AddRequest {
    user_id: Option<i64>,
    username: Option<String>,
}

impl AddRequest {
    fn member(self) -> Result<MemberRef, ServiceError> {
        match (self.user_id, self.username) {
            (Some(id), None) => Ok(MemberRef::Id(id)),
            (None, Some(name)) => Ok(MemberRef::Username(name)),
            _ => Err(ServiceError::Validation(FieldErrors::single(
                "user_id",
                "Name the account to add with either \"user_id\" or \"username\".",
            ))),
        }
    }
}

pub async fn add_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AddRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let who = body.member()?;
    let user = groups::add_member(&state.db, me.actor(&client), id, who).await?;
    let added =
        json!({ "group_id": id, "user_id": user.id, "username": user.username, "source": "admin" });
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn remove_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path((id, user_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    groups::remove_member(&state.db, me.actor(&client), id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
