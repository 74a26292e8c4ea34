//! `/api/admin/invites…`: invite links for scripts. Same rules, messages and audit events
//! as `/admin/invites`, because both call `service::invites`. The link (and its token) is in
//! the creating answer only.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::Role;
use crate::domain::invite::{Invite, InviteFields, InviteState, NewInvite};
use crate::service::{ServiceError, invites};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// An invite with its state now.
#[derive(Serialize, ToSchema)]
#[schema(as = InviteWithState)]
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

/// The latest invites.
#[derive(Serialize, ToSchema)]
pub struct InviteList {
    invites: Vec<InviteDto>,
}

#[utoipa::path(
    get,
    path = "/api/admin/invites",
    summary = "List invites",
    description = "Admins only. The latest 200, newest first, whatever their state.",
    responses((status = OK, description = "The invites", body = InviteList))
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<InviteList>, ApiError> {
    let invites = invites::list(&state.db)
        .await?
        .into_iter()
        .map(InviteDto::from)
        .collect();
    Ok(Json(InviteList { invites }))
}

#[utoipa::path(
    get,
    path = "/api/admin/invites/{id}",
    summary = "One invite",
    description = "Admins only.",
    params(("id" = i64, Path, description = "The invite's id")),
    responses(
        (status = OK, description = "The invite", body = InviteDto),
        (status = NOT_FOUND, description = "No such invite", body = ErrorBody),
    )
)]

pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<InviteDto>, ApiError> {
    Ok(Json(invites::get(&state.db, id).await?.into()))
}

/// Every field optional: `{}` invites anyone as a `user` for 7 days.
#[derive(Deserialize, ToSchema)]
#[schema(as = InviteCreateRequest)]
pub struct CreateRequest {
    /// Fills in the sign-up form's email (the invitee may change it). Refused if another
    /// account has it.
    #[serde(default)]
    email: Option<String>,
    /// Fills in the sign-up form's username (the invitee may change it). Refused if another
    /// account has it.
    #[serde(default)]
    username: Option<String>,
    /// `admin`, `user` or `viewer`; missing or null: `user`.
    #[serde(default)]
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Ids of existing groups the new account joins.
    #[serde(default)]
    groups: Vec<i64>,
    /// Days the link stays open (1–90); missing or null: 7.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    expires_in_days: Option<i64>,
    /// The new account waits for an administrator's approval (`pending`) instead of being
    /// active at once.
    #[serde(default)]
    needs_approval: bool,
}

/// The new invite, its token and its link: the only time either is shown.
#[derive(Serialize, ToSchema)]
#[schema(as = InviteCreated)]
pub struct Created {
    invite: InviteDto,
    /// The secret in the link (`hpi_…`). Hallpass keeps a keyed hash of it, never the token.
    #[schema(example = "hpi_…")]
    token: String,
    /// The link to send the invitee: `<public base URL>/invite/<token>`.
    url: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/invites",
    summary = "Make an invite link",
    description = "Admins only. The answer is the only one that carries the token and the link \
        (`Cache-Control: no-store`).",
    request_body = CreateRequest,
    responses(
        (status = CREATED, description = "The invite, its token and its link", body = Created,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: see `fields` \
            (`email`, `username`, `role`, `expires_in_days`, `groups`); `BAD_REQUEST`: a field \
            of the wrong type", body = ErrorBody),
    )
)]

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
#[utoipa::path(
    delete,
    path = "/api/admin/invites/{id}",
    summary = "Revoke an invite",
    description = "Admins only. The link stops working (410 for the invitee); the invite stays \
        in the list as `revoked`. An expired invite may be revoked too.",
    params(("id" = i64, Path, description = "The invite's id")),
    responses(
        (status = NO_CONTENT, description = "Revoked"),
        (status = NOT_FOUND, description = "No such invite", body = ErrorBody),
        (status = CONFLICT, description = "`INVITE_NOT_OPEN`: used or revoked already",
            body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    invites::revoke(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, get_one, revoke))]
pub struct Doc;
