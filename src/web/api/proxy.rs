//! `/api/admin/proxy…`: the forward-auth proxy settings as `/admin/proxy` shows them, the
//! header preset (choose, revert) and the links of the user names the proxy sends. Same
//! rules, messages and audit events as the page, because both call `service::proxy` and
//! `service::sso::identities`. Unlink a proxy link with `DELETE /api/admin/sso/identities/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::ApiJson;
use super::sso_links::{LinkDto, LinkListDto};
use crate::domain::FieldErrors;
use crate::domain::proxy::{HeaderNames, Preset};
use crate::domain::sso::PROXY_PROVIDER;
use crate::service::ServiceError;
use crate::service::proxy;
use crate::service::sso::identities::{self, SubjectField};
use crate::service::sso::lookup;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

/// The proxy settings (read-only here: they come from `auth.proxy.*`) and the preset.
#[derive(Serialize)]
pub struct ProxyDto {
    enabled: bool,
    trusted_proxies: Vec<String>,
    policy: String,
    admin_groups: Vec<String>,
    viewer_groups: Vec<String>,
    /// The identity headers in force (the preset's, or the configured ones).
    headers: HeaderNames,
    /// The headers `auth.proxy.*_header` configures.
    configured_headers: HeaderNames,
    /// The preset chosen in the admin UI; `null`: the configured headers.
    preset: Option<&'static str>,
    /// "Revert to previous" would bring back this preset (`config`: the configured
    /// headers); `null`: nothing to revert to.
    previous_preset: Option<&'static str>,
}

async fn proxy_dto(state: &AppState) -> Result<ProxyDto, ApiError> {
    let cfg = &state.config.auth.proxy;
    let previous = proxy::previous_preset(&state.db)
        .await?
        .map(|p| p.map_or("config", Preset::as_str));
    Ok(ProxyDto {
        enabled: cfg.enabled,
        trusted_proxies: cfg.trusted_proxies.clone(),
        policy: cfg.policy.clone(),
        admin_groups: cfg.admin_groups.clone(),
        viewer_groups: cfg.viewer_groups.clone(),
        headers: state.proxy.headers_now(&state.db, cfg).await,
        configured_headers: cfg.configured_headers(),
        preset: state.proxy.current(&state.db).await.map(Preset::as_str),
        previous_preset: previous,
    })
}

/// `GET /api/admin/proxy`.
pub async fn get(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<ProxyDto>, ApiError> {
    Ok(Json(proxy_dto(&state).await?))
}

/// `PUT /api/admin/proxy/preset`: `authelia`, `authentik`, `oauth2-proxy`, or `config` /
/// `null` for the configured headers.
#[derive(Deserialize)]
pub struct PresetRequest {
    preset: Option<String>,
}

pub async fn put_preset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<PresetRequest>,
) -> Result<Json<ProxyDto>, ApiError> {
    let preset = Preset::choice(body.preset.as_deref().unwrap_or(""))
        .map_err(|m| ServiceError::Validation(FieldErrors::single("preset", m)))?;
    proxy::set_preset(&state.db, &state.proxy, me.actor(&client), preset).await?;
    Ok(Json(proxy_dto(&state).await?))
}

/// `POST /api/admin/proxy/preset/revert`: the preset the last change replaced is back.
pub async fn revert_preset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
) -> Result<Json<ProxyDto>, ApiError> {
    proxy::revert_preset(&state.db, &state.proxy, me.actor(&client)).await?;
    Ok(Json(proxy_dto(&state).await?))
}

/// `GET /api/admin/proxy/links`.
pub async fn links(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<LinkListDto>, ApiError> {
    Ok(Json(LinkListDto::of(lookup::proxy_links(&state.db).await?)))
}

/// `POST /api/admin/proxy/links`: the user name the proxy sends, and the account (username
/// or email) it signs in as (what the `link` policy needs).
#[derive(Deserialize)]
pub struct CreateProxyLinkRequest {
    #[serde(default)]
    proxy_user: String,
    #[serde(default)]
    username: String,
}

pub async fn create_link(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    ApiJson(body): ApiJson<CreateProxyLinkRequest>,
) -> Result<(StatusCode, Json<LinkDto>), ApiError> {
    let actor = me.actor(&client).keeping(session);
    let at = (PROXY_PROVIDER, proxy::PROXY_ISSUER);
    let link = identities::link_named(
        &state.db,
        actor,
        at,
        SubjectField::Proxy,
        &body.proxy_user,
        &body.username,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(link.into())))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
