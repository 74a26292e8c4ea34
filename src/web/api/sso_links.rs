//! `/api/admin/sso/providers/{id}/links` and `/api/admin/sso/identities/{id}`: the identities
//! linked through a provider, linking a known subject to an account, and unlinking (any
//! link, the forward-auth proxy's included). Same rules, messages and audit events as the
//! wizard's step 2, because both call `service::sso::identities`. ("Verify & Link" is a
//! browser round trip through the provider: it has no JSON form.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::sso::UnlinkEffect;
use crate::service::sso::identities::{self, LinkView, SubjectField};
use crate::service::sso::providers;
use crate::service::{Missing, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// One linked identity: who a provider (or the forward-auth proxy) knows as `subject` signs
/// in as account `user_id`. Times are unix seconds (UTC).
#[derive(Serialize, ToSchema)]
pub struct LinkDto {
    /// Pass to `DELETE /api/admin/sso/identities/{id}` to unlink.
    id: i64,
    /// The provider's id, or `proxy` for a forward-auth proxy's user name.
    provider: String,
    /// The issuer the link was made under.
    issuer: String,
    /// The provider's subject (`sub`, or the configured claim), or the proxy's user name.
    subject: String,
    user_id: i64,
    username: String,
    /// The email the provider last sent; `null`: none.
    #[schema(required = true)]
    email: Option<String>,
    /// Unix seconds.
    linked_at: i64,
    /// Unix seconds; `null`: never used to sign in.
    #[schema(required = true)]
    last_login_at: Option<i64>,
    /// Made under another issuer than the provider's current one: it no longer matches.
    stale: bool,
}

impl From<LinkView> for LinkDto {
    fn from(v: LinkView) -> Self {
        let i = v.identity;
        Self {
            id: i.id,
            provider: i.provider,
            issuer: i.issuer,
            subject: i.subject,
            user_id: i.user_id,
            username: v.username,
            email: i.email,
            linked_at: i.created_at,
            last_login_at: i.last_login_at,
            stale: v.stale,
        }
    }
}

/// A list of links (a provider's, or the proxy's).
#[derive(Serialize, ToSchema)]
pub struct LinkListDto {
    links: Vec<LinkDto>,
}

impl LinkListDto {
    pub fn of(links: Vec<LinkView>) -> Self {
        Self {
            links: links.into_iter().map(LinkDto::from).collect(),
        }
    }
}

/// The `{id}` of `/api/admin/sso/providers/{id}/links`.
const PROVIDER_ID: &str = "The provider's id (its slug)";

/// `GET /api/admin/sso/providers/{id}/links`.
#[utoipa::path(
    get,
    path = "/api/admin/sso/providers/{id}/links",
    summary = "List a provider's linked identities",
    description = "Admins only. Links made under an earlier issuer of the provider are listed with `stale: true`.",
    params(("id" = String, Path, description = PROVIDER_ID)),
    responses(
        (status = OK, description = "The links", body = LinkListDto),
        (status = NOT_FOUND, description = "No provider has this id", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LinkListDto>, ApiError> {
    let p = providers::find(&state.db, &state.secret, &state.config.sso, &id)
        .await?
        .ok_or(ServiceError::from(Missing::Provider))?;
    let links = identities::for_provider(&state.db, &p).await?;
    Ok(Json(LinkListDto::of(links)))
}

/// The subject (`sub`) a provider knows the person by, and the account (username or email)
/// to link it to.
#[derive(Deserialize, ToSchema)]
pub struct CreateLinkRequest {
    /// The subject (`sub`, or the provider's configured subject claim) of the identity.
    #[serde(default)]
    #[schema(required = true)]
    subject: String,
    /// The account to link it to: its username or email (any case).
    #[serde(default)]
    #[schema(required = true)]
    username: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/sso/providers/{id}/links",
    summary = "Link an identity of a provider to an account",
    description = "Admins only. The person known to the provider as `subject` then signs in as the account \
        (while SSO login is on). The account's sessions end, but the caller's own. Refused for \
        the break-glass account (409 `BREAK_GLASS_ACCOUNT`).",
    params(("id" = String, Path, description = PROVIDER_ID)),
    request_body = CreateLinkRequest,
    responses(
        (status = CREATED, description = "The link", body = LinkDto),
        (status = NOT_FOUND, description = "No provider has this id", body = ErrorBody),
        (status = CONFLICT, description = "`ALREADY_LINKED` (this account) or `IDENTITY_TAKEN` (another account has this identity), or `BREAK_GLASS_ACCOUNT`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`subject` or `username` is missing, or no account has this name: `fields` names each", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateLinkRequest>,
) -> Result<(StatusCode, Json<LinkDto>), ApiError> {
    let p = providers::find(&state.db, &state.secret, &state.config.sso, &id)
        .await?
        .ok_or(ServiceError::from(Missing::Provider))?;
    // Linking to yourself ends your other sessions, not this one.
    let actor = me.actor(&client).keeping(session);
    let at = (p.id.as_str(), p.issuer.as_str());
    let link = identities::link_named(
        &state.db,
        actor,
        at,
        SubjectField::Oidc,
        &body.subject,
        &body.username,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(link.into())))
}

/// What unlinking did.
#[derive(Serialize, ToSchema)]
pub struct UnlinkedDto {
    /// The link removed.
    id: i64,
    /// The account it signed in as.
    user_id: i64,
    /// It was the caller's own last identity while password sign-in was off: password
    /// sign-in is on again.
    local_login_turned_on: bool,
}

#[utoipa::path(
    delete,
    path = "/api/admin/sso/identities/{id}",
    summary = "Unlink an identity",
    description = "Admins only. Any link: a provider's or the forward-auth proxy's. The account's sessions \
        end, but the caller's own. Refused when it is the account's last way to sign in (409 \
        `LAST_SIGN_IN_METHOD`).",
    params(("id" = i64, Path, description = "The link's id (`id` of a link)")),
    responses(
        (status = OK, description = "Unlinked", body = UnlinkedDto),
        (status = NOT_FOUND, description = "No link has this id", body = ErrorBody),
        (status = CONFLICT, description = "`LAST_SIGN_IN_METHOD`: the account could no longer sign in", body = ErrorBody),
    )
)]
pub async fn unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<UnlinkedDto>, ApiError> {
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let actor = me.actor(&client).keeping(session);
    let done = identities::unlink(&state.db, &state.config.sso, &all, actor, id).await?;
    Ok(Json(UnlinkedDto {
        id,
        user_id: done.user_id,
        local_login_turned_on: done.effect == UnlinkEffect::TurnsLocalLoginOn,
    }))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, unlink))]
pub struct Doc;
