//! `/api/admin/groups…`: groups and their members for scripts. Same rules, messages and
//! audit events as `/admin/groups`, because both call `service::groups`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::FieldErrors;
use crate::domain::groups::{ADMIN_SOURCE, Group, GroupInput, Member};
use crate::service::ServiceError;
use crate::service::groups::{self, MemberRef};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// Every group.
#[derive(Serialize, ToSchema)]
pub struct GroupList {
    groups: Vec<Group>,
}

#[utoipa::path(
    get,
    path = "/api/admin/groups",
    summary = "List groups",
    description = "Admins only.",
    responses((status = OK, description = "Every group, by name", body = GroupList))
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<GroupList>, ApiError> {
    let groups = groups::list(&state.db).await?;
    Ok(Json(GroupList { groups }))
}

/// One group and the apps whose rules name it.
#[derive(Serialize, ToSchema)]
#[schema(as = GroupDetail)]
pub struct GroupDto {
    #[serde(flatten)]
    group: Group,
    /// The names of the apps whose access rules name this group (deleting the group removes
    /// it from them).
    apps: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/groups/{id}",
    summary = "One group",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The group's id")),
    responses(
        (status = OK, description = "The group and the apps that name it", body = GroupDto),
        (status = NOT_FOUND, description = "No such group", body = ErrorBody),
    )
)]

pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<GroupDto>, ApiError> {
    let d = groups::detail(&state.db, id).await?;
    Ok(Json(GroupDto {
        group: d.group,
        apps: d.apps,
    }))
}

/// A group to make.
#[derive(Deserialize, ToSchema)]
#[schema(as = GroupCreateRequest)]
pub struct CreateRequest {
    /// 1–64 characters, no comma, unique regardless of case. Missing or blank is refused (422).
    #[serde(default)]
    #[schema(example = "family")]
    name: String,
    /// Up to 200 characters; missing or blank: none.
    #[serde(default)]
    description: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/groups",
    summary = "Make a group",
    description = "Admins only.",
    request_body = CreateRequest,
    responses(
        (status = CREATED, description = "The new group", body = Group),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: see `fields` \
            (`name`, `description`); `BAD_REQUEST`: a field of the wrong type", body = ErrorBody),
        (status = CONFLICT, description = "`GROUP_NAME_TAKEN`: another group has that name \
            (regardless of case)", body = ErrorBody),
    )
)]

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

/// What a PATCH changes; a field left out (or null) keeps its value.
#[derive(Deserialize, ToSchema)]
#[schema(as = GroupPatchRequest)]
pub struct PatchRequest {
    /// The new name (rules as when making a group).
    name: Option<String>,
    /// The new description; `""` clears it.
    description: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/admin/groups/{id}",
    summary = "Rename a group or change its description",
    description = "Admins only. Access rules name groups by id: renaming one keeps them.",
    params(("id" = i64, Path, description = "The group's id")),
    request_body = PatchRequest,
    responses(
        (status = OK, description = "The group as it is now", body = Group),
        (status = NOT_FOUND, description = "No such group", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: see `fields`; \
            `BAD_REQUEST`: a field of the wrong type", body = ErrorBody),
        (status = CONFLICT, description = "`GROUP_NAME_TAKEN`: another group has that name",
            body = ErrorBody),
    )
)]

pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
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

#[utoipa::path(
    delete,
    path = "/api/admin/groups/{id}",
    summary = "Delete a group",
    description = "Admins only. Its memberships end, and the apps whose rules named it lose it \
        from them.",
    params(("id" = i64, Path, description = "The group's id")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, description = "No such group", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    groups::delete(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group's members.
#[derive(Serialize, ToSchema)]
#[schema(as = GroupMemberList)]
pub struct MemberList {
    members: Vec<Member>,
}

#[utoipa::path(
    get,
    path = "/api/admin/groups/{id}/members",
    summary = "A group's members",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The group's id")),
    responses(
        (status = OK, description = "The members", body = MemberList),
        (status = NOT_FOUND, description = "No such group", body = ErrorBody),
    )
)]
pub async fn members(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<MemberList>, ApiError> {
    let members: Vec<Member> = groups::detail(&state.db, id).await?.members;
    Ok(Json(MemberList { members }))
}

/// The account to add: exactly one of `user_id` and `username`.
#[derive(Deserialize, ToSchema)]
#[schema(as = GroupMemberAddRequest)]
pub struct AddRequest {
    /// The account's id.
    user_id: Option<i64>,
    /// The account's username (regardless of case).
    username: Option<String>,
}

/// A membership an administrator made.
#[derive(Serialize, ToSchema)]
#[schema(as = GroupMemberAdded)]
pub struct MemberAdded {
    group_id: i64,
    user_id: i64,
    username: String,
    /// Always `admin` (memberships from a groups claim are made at sign-in).
    #[schema(value_type = String, example = "admin")]
    source: &'static str,
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

#[utoipa::path(
    post,
    path = "/api/admin/groups/{id}/members",
    summary = "Add an account to a group",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The group's id")),
    request_body = AddRequest,
    responses(
        (status = CREATED, description = "The membership", body = MemberAdded),
        (status = NOT_FOUND, description = "No such group, or no such account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: neither or both of \
            `user_id` and `username`; `BAD_REQUEST`: a field of the wrong type", body = ErrorBody),
        (status = CONFLICT, description = "`ALREADY_MEMBER`, or `ACCOUNT_DELETED` (restore the \
            account first)", body = ErrorBody),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AddRequest>,
) -> Result<(StatusCode, Json<MemberAdded>), ApiError> {
    let who = body.member()?;
    let user = groups::add_member(&state.db, me.actor(&client), id, who).await?;
    let added = MemberAdded {
        group_id: id,
        user_id: user.id,
        username: user.username,
        source: ADMIN_SOURCE,
    };
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(
    delete,
    path = "/api/admin/groups/{id}/members/{user_id}",
    summary = "Remove an account from a group",
    description = "Admins only. A membership from a groups claim comes back at the account's \
        next sign-in through that provider, if the claim still names the group.",
    params(
        ("id" = i64, Path, description = "The group's id"),
        ("user_id" = i64, Path, description = "The account's id"),
    ),
    responses(
        (status = NO_CONTENT, description = "Removed"),
        (status = NOT_FOUND, description = "No such group, or the account is not a member",
            body = ErrorBody),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath((id, user_id)): ApiPath<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    groups::remove_member(&state.db, me.actor(&client), id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    get_one,
    patch,
    delete,
    members,
    add_member,
    remove_member
))]
pub struct Doc;
