//! `/api/admin/users…`: the user table for scripts. Same rules and messages as the HTML
//! table, because both call `service::admin`.

use crate::service::Missing;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::{FieldErrors, Password, Role, Status, User};
use crate::service::admin::{self, Change, Profile};
use crate::service::{ServiceError, users};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;
use crate::web::user_list::ListParams;

/// A user as the admin API shows them: never a hash.
#[derive(Serialize, ToSchema)]
pub struct UserDto {
    id: i64,
    username: String,
    /// `null` when the account has none.
    #[schema(required = true)]
    email: Option<String>,
    /// `null` when the account has none.
    #[schema(required = true)]
    display_name: Option<String>,
    role: Role,
    status: Status,
    /// Deleted (soft): kept, cannot sign in, can be restored or purged.
    deleted: bool,
    /// `false` for an account that only signs in through an OpenID provider or a passkey.
    has_password: bool,
    /// When the account was created, in unix seconds (UTC).
    created_at: i64,
    /// The last sign-in, in unix seconds (UTC); `null` before the first.
    #[schema(required = true)]
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

/// A page of the user table.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    users: Vec<UserDto>,
    /// Pass back as `after` (with the same other parameters) for the next page; `null` on
    /// the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// `GET /api/admin/users`.
#[utoipa::path(
    get,
    path = "/api/admin/users",
    summary = "List accounts, a page at a time",
    description = "Admins only. The same search, filters and order as the admin user table. \
        Deleted accounts are left out unless `status=deleted`.",
    params(ListParams),
    responses(
        (status = OK, description = "A page of accounts", body = UserPage),
        (status = BAD_REQUEST, description = "`BAD_REQUEST`: an unknown role, status, sort, \
            direction or group, or a malformed cursor", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(params): Query<ListParams>,
) -> Result<Json<UserPage>, ApiError> {
    let query = params
        .to_query()
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m))?;
    let page = users::list(&state.db, &state.user_pages, query, users::Detail::Rows).await?;
    let users = page.users.iter().map(|u| UserDto::from(&u.user)).collect();
    Ok(Json(UserPage {
        users,
        next: page.next.clone(),
    }))
}

/// `GET /api/admin/users/{id}`.
#[utoipa::path(
    get,
    path = "/api/admin/users/{id}",
    summary = "One account",
    description = "Admins only. Deleted accounts too (`deleted: true`).",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = OK, description = "The account", body = UserDto),
        (status = NOT_FOUND, description = "`NOT_FOUND`: no account with this id", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<i64>,
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

/// A new account, active at once.
#[derive(Deserialize, ToSchema)]
pub struct CreateRequest {
    #[serde(default)]
    #[schema(required = true)]
    username: String,
    /// Empty or absent for none.
    #[serde(default)]
    email: String,
    /// Empty or absent for none.
    #[serde(default)]
    display_name: String,
    /// `user` when absent.
    #[serde(default = "default_role")]
    #[schema(value_type = Role)]
    role: String,
    /// Omit to have a one-time password generated and returned once.
    password: Option<String>,
}

/// `201` from `POST /api/admin/users`.
#[derive(Serialize, ToSchema)]
pub struct UserCreated {
    user: UserDto,
    /// The generated password when the request had none: shown this once, never again.
    /// `null` when the request gave one.
    #[schema(required = true)]
    one_time_password: Option<String>,
}

fn default_role() -> String {
    "user".into()
}

/// `POST /api/admin/users`.
#[utoipa::path(
    post,
    path = "/api/admin/users",
    summary = "Create an account",
    description = "Admins only. The account is active at once; without `password`, one is \
        generated and answered once.",
    request_body = CreateRequest,
    responses(
        (status = CREATED, description = "Created", body = UserCreated),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: a field is \
            missing or invalid, or the username or email is taken (in `fields`)",
            body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<UserCreated>), ApiError> {
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
    let user = UserDto::from(&user);
    let one_time_password = one_time;
    Ok((
        StatusCode::CREATED,
        Json(UserCreated {
            user,
            one_time_password,
        }),
    ))
}

/// A change to an account's profile: absent (or `null`) fields keep their value.
#[derive(Deserialize, ToSchema)]
pub struct PatchRequest {
    username: Option<String>,
    /// `""` removes it.
    email: Option<String>,
    /// `""` removes it.
    display_name: Option<String>,
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
}

/// `PATCH /api/admin/users/{id}`.
#[utoipa::path(
    patch,
    path = "/api/admin/users/{id}",
    summary = "Change an account's profile or role",
    description = "Admins only. Refused for your own role (`CANNOT_DEMOTE_SELF`) and for the \
        last active admin's (`LAST_ACTIVE_ADMIN`).",
    params(("id" = i64, Path, description = "The account's id")),
    request_body = PatchRequest,
    responses(
        (status = OK, description = "The account as changed", body = UserDto),
        (status = NOT_FOUND, description = "`NOT_FOUND`: no account with this id", body = ErrorBody),
        (status = CONFLICT, description = "`CANNOT_DEMOTE_SELF`, `LAST_ACTIVE_ADMIN`",
            body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: a field is \
            invalid, or the username or email is taken (in `fields`)", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
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

/// `DELETE /api/admin/users/{id}`.
#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}",
    summary = "Delete an account (soft)",
    description = "Admins only. The account is kept, marked deleted, and its sessions end; \
        `restore` brings it back, `purge` removes it for good. Answers the account as it is \
        now (not `204`).",
    params(("id" = i64, Path, description = "The account's id")),
    responses(
        (status = OK, description = "The account, now deleted", body = UserDto),
        (status = NOT_FOUND, description = "`NOT_FOUND`: no account with this id", body = ErrorBody),
        (status = CONFLICT, description = "`CANNOT_DELETE_SELF`, `LAST_ACTIVE_ADMIN`",
            body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UserDto>, ApiError> {
    change(&state, &me, &client, id, Change::Delete).await
}

/// What `POST /api/admin/users/{id}/{action}` can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum UserAction {
    Disable,
    Enable,
    Approve,
    Reject,
    Restore,
    Password,
    Purge,
}

impl UserAction {
    const ALL: [UserAction; 7] = [
        UserAction::Disable,
        UserAction::Enable,
        UserAction::Approve,
        UserAction::Reject,
        UserAction::Restore,
        UserAction::Password,
        UserAction::Purge,
    ];

    /// The name in the path.
    fn as_str(self) -> &'static str {
        match self {
            UserAction::Disable => "disable",
            UserAction::Enable => "enable",
            UserAction::Approve => "approve",
            UserAction::Reject => "reject",
            UserAction::Restore => "restore",
            UserAction::Password => "password",
            UserAction::Purge => "purge",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The body of an action: only `password` and `purge` read one; the others take none (an
/// empty body, or `{}`).
#[derive(Deserialize, Default, ToSchema)]
pub struct ActionBody {
    /// For `password`: the new password (required there; at least the instance's minimum
    /// length). The account's sessions end.
    #[serde(default)]
    password: Option<String>,
    /// For `purge`: the account's username, typed again, to confirm the removal for good.
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
        let Some(action) = UserAction::parse(action) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "No such action.",
            ));
        };
        Ok(match action {
            UserAction::Disable => Change::Disable,
            UserAction::Enable => Change::Enable,
            UserAction::Approve => Change::Approve,
            UserAction::Reject => Change::Reject,
            UserAction::Restore => Change::Restore,
            UserAction::Password => Change::ResetPassword(
                Password::parse(self.password.as_deref().unwrap_or(""))
                    .map_err(|m| ServiceError::Validation(FieldErrors::single("password", m)))?,
            ),
            UserAction::Purge => Change::Purge {
                confirm: self.confirm.unwrap_or_default(),
            },
        })
    }
}

/// `POST /api/admin/users/{id}/{action}`.
#[utoipa::path(
    post,
    path = "/api/admin/users/{id}/{action}",
    summary = "Disable, enable, approve, reject, restore, set the password of, or purge an account",
    description = "Admins only. `disable`, `reject`, `password` and `purge` end the account's \
        sessions. `password` takes `{\"password\": \"…\"}`; `purge` removes a deleted account \
        for good and takes `{\"confirm\": \"<its username>\"}`; the others take no body. \
        Refused for yourself (`CANNOT_DISABLE_SELF`, …) and when it would leave no active \
        admin (`LAST_ACTIVE_ADMIN`).",
    params(
        ("id" = i64, Path, description = "The account's id"),
        ("action" = UserAction, Path, description = "What to do"),
    ),
    request_body(content = Option<ActionBody>, description = "Only for `password` and `purge`"),
    responses(
        (status = OK, description = "The account as it is now (every action but `purge`)",
            body = UserDto),
        (status = NO_CONTENT, description = "`purge`: the account is gone"),
        (status = BAD_REQUEST, description = "`BAD_REQUEST`: the body is not JSON", body = ErrorBody),
        (status = NOT_FOUND, description = "`NOT_FOUND`: no account with this id, or no such \
            action", body = ErrorBody),
        (status = CONFLICT, description = "`CANNOT_DISABLE_SELF`, `CANNOT_REJECT_SELF`, \
            `CANNOT_PURGE_SELF`, `LAST_ACTIVE_ADMIN`, `PURGE_NEEDS_DELETE` (delete it first), \
            `PURGE_NOT_CONFIRMED` (`confirm` is not its username)", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: `password` missing \
            or too short (in `fields`)", body = ErrorBody),
    )
)]
pub async fn action(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath((id, action)): ApiPath<(i64, String)>,
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
#[openapi(
    paths(list, create, get_one, patch, delete, action),
    // A path parameter's type is not collected from the operation like a body's.
    components(schemas(UserAction))
)]
pub struct Doc;
