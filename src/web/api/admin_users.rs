//! `/api/admin/users…`: the user table for scripts. Same rules and messages as the HTML
//! table, because both call `service::admin`.

use crate::service::Missing;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiJson;
use crate::domain::{FieldErrors, Password, Role, Status, User};
use crate::service::admin::{self, Change, Profile};
use crate::service::{ServiceError, users};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;
use crate::web::user_list::ListParams;

/// A user as the admin API shows them: never a hash.
#[derive(Serialize)]
pub struct UserDto {
    id: i64,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    role: Role,
    status: Status,
    deleted: bool,
    has_password: bool,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            status: u.status,
            deleted: u.deleted_at.is_some(),
            has_password: u.password_hash.is_some(),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Query(params): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = params
        .to_query()
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m))?;
    let page = users::list(&state.db, query, users::Detail::Rows).await?;
    let dtos: Vec<UserDto> = page.users.iter().map(|u| UserDto::from(&u.user)).collect();
    Ok(Json(json!({ "users": dtos, "next": page.next })))
}

pub async fn get_one(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<UserDto>, ApiError> {
    let user = found(&state, id).await?;
    Ok(Json(UserDto::from(&user)))
}

/// The account with this id, or 404 `NOT_FOUND`.
async fn found(state: &AppState, id: i64) -> Result<User, ApiError> {
    Ok(users::get(&state.db, id)
        .await?
        .ok_or(ServiceError::from(Missing::Account))?)
}

#[derive(Deserialize)]
pub struct CreateRequest {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default = "default_role")]
    role: String,
    /// Omit to have a one-time password generated and returned once.
    password: Option<String>,
}

fn default_role() -> String {
    "user".into()
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (profile, password) = admin::parse_new_user(
        &body.username,
        &body.email,
        &body.display_name,
        &body.role,
        body.password.as_deref(),
    )
    .map_err(ServiceError::Validation)?;
    let (user, one_time) = admin::create_user(
        &state.db,
        &state.hasher,
        me.actor(&client),
        profile,
        password,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserDto::from(&user), "one_time_password": one_time })),
    ))
}

#[derive(Deserialize)]
pub struct PatchRequest {
    username: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    role: Option<String>,
}

pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PatchRequest>,
) -> Result<Json<UserDto>, ApiError> {
    let current = found(&state, id).await?;
    let profile = Profile::parse(
        body.username.as_deref().unwrap_or(&current.username),
        body.email
            .as_deref()
            .or(current.email.as_deref())
            .unwrap_or(""),
        body.display_name
            .as_deref()
            .or(current.display_name.as_deref())
            .unwrap_or(""),
        body.role.as_deref().unwrap_or(current.role.as_str()),
    )
    .map_err(ServiceError::Validation)?;
    change(&state, &me, &client, id, Change::Edit(profile)).await
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Json<UserDto>, ApiError> {
    change(&state, &me, &client, id, Change::Delete).await
}

#[derive(Deserialize, Default)]
pub struct ActionBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

impl ActionBody {
    /// The body is optional (most actions need none), so it is parsed only when present.
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("Invalid JSON body: {e}"),
            )
        })
    }

    /// The change `action` asks for, with what this body supplies for it.
    fn change(self, action: &str) -> Result<Change, ApiError> {
        Ok(match action {
            "disable" => Change::Disable,
            "enable" => Change::Enable,
            "approve" => Change::Approve,
            "reject" => Change::Reject,
            "restore" => Change::Restore,
            "password" => Change::ResetPassword(
                Password::parse(self.password.as_deref().unwrap_or(""))
                    .map_err(|m| ServiceError::Validation(FieldErrors::single("password", m)))?,
            ),
            "purge" => Change::Purge {
                confirm: self.confirm.unwrap_or_default(),
            },
            _ => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "No such action.",
                ));
            }
        })
    }
}

/// `POST /api/admin/users/{id}/{action}`.
pub async fn action(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path((id, action)): Path<(i64, String)>,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let change = ActionBody::parse(&body)?.change(&action)?;
    let purge = matches!(change, Change::Purge { .. });
    let res = change_inner(&state, &me, &client, id, change).await?;
    Ok(match (purge, res) {
        (true, _) | (_, None) => StatusCode::NO_CONTENT.into_response(),
        (false, Some(u)) => Json(UserDto::from(&u)).into_response(),
    })
}

async fn change_inner(
    state: &AppState,
    me: &crate::web::identity::CurrentUser,
    client: &Client,
    id: i64,
    change: Change,
) -> Result<Option<User>, ApiError> {
    Ok(admin::apply(&state.db, &state.hasher, me.actor(client), id, change).await?)
}

async fn change(
    state: &AppState,
    me: &crate::web::identity::CurrentUser,
    client: &Client,
    id: i64,
    change: Change,
) -> Result<Json<UserDto>, ApiError> {
    let user = change_inner(state, me, client, id, change)
        .await?
        .ok_or(ServiceError::from(Missing::Account))?;
    Ok(Json(UserDto::from(&user)))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
