//! `/api/admin/sso/providers/{id}/links` and `/api/admin/sso/identities/{id}`: the identities
//! linked through a provider, linking a known subject to an account, and unlinking (any
//! link, the forward-auth proxy's included). Same rules, messages and audit events as the
//! wizard's step 2, because both call `service::sso::identities`. ("Verify & Link" is a
//! browser round trip through the provider: it has no JSON form.)

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::ApiJson;
use crate::domain::sso::UnlinkEffect;
use crate::service::sso::identities::{self, LinkView, SubjectField};
use crate::service::sso::providers;
use crate::service::{Missing, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

/// One linked identity. Times are unix seconds (UTC).
#[derive(Serialize)]
pub struct LinkDto {
    /// Pass to `DELETE /api/admin/sso/identities/{id}` to unlink.
    id: i64,
    provider: String,
    issuer: String,
    subject: String,
    user_id: i64,
    username: String,
    email: Option<String>,
    linked_at: i64,
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
#[derive(Serialize)]
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

/// `GET /api/admin/sso/providers/{id}/links`.
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> Result<Json<LinkListDto>, ApiError> {
    let p = providers::find(&state.db, &state.secret, &state.config.sso, &id)
        .await?
        .ok_or(ServiceError::from(Missing::Provider))?;
    let links = identities::for_provider(&state.db, &p).await?;
    Ok(Json(LinkListDto::of(links)))
}

/// `POST /api/admin/sso/providers/{id}/links`: the subject (`sub`) the provider knows the
/// person by, and the account (username or email) to link it to.
#[derive(Deserialize)]
pub struct CreateLinkRequest {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    username: String,
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<String>,
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

/// `DELETE /api/admin/sso/identities/{id}`: what unlinking did.
#[derive(Serialize)]
pub struct UnlinkedDto {
    id: i64,
    user_id: i64,
    /// It was the caller's own last identity while password sign-in was off: password
    /// sign-in is on again.
    local_login_turned_on: bool,
}

pub async fn unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
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
#[openapi(paths())]
pub struct Doc;
