//! `/api/admin/proxy…`: the forward-auth proxy settings as `/admin/proxy` shows them, the
//! header preset (choose, revert) and the links of the user names the proxy sends. Same
//! rules, messages and audit events as the page, because both call `service::proxy` and
//! `service::sso::identities`. Unlink a proxy link with `DELETE /api/admin/sso/identities/{id}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;

use super::ApiJson;
use super::sso_links::{LinkDto, LinkListDto};
use crate::domain::FieldErrors;
use crate::domain::proxy::{HeaderNames, Preset};
use crate::domain::sso::{PROXY_PROVIDER, Policy};
use crate::service::ServiceError;
use crate::service::proxy;
use crate::service::sso::identities::{self, SubjectField};
use crate::service::sso::lookup;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// The forward-auth proxy settings (read-only here: they come from `auth.proxy.*`) and the
/// header preset.
#[derive(Serialize, ToSchema)]
pub struct ProxyDto {
    /// `auth.proxy.enabled`: identity headers are trusted at all.
    enabled: bool,
    /// `auth.proxy.trusted_proxies`: the addresses and CIDR ranges whose headers are trusted.
    trusted_proxies: Vec<String>,
    /// `auth.proxy.policy`, as in force.
    policy: Policy,
    /// `auth.proxy.admin_groups`: members of these groups sign in as admins.
    admin_groups: Vec<String>,
    /// `auth.proxy.viewer_groups`: members of these groups sign in as viewers.
    viewer_groups: Vec<String>,
    /// The identity headers in force (the preset's, or the configured ones).
    headers: HeaderNames,
    /// The headers `auth.proxy.*_header` configures.
    configured_headers: HeaderNames,
    /// The preset chosen in the admin UI; `null`: the configured headers.
    #[schema(required = true)]
    preset: Option<Preset>,
    /// What "Revert to previous" would bring back; `null`: nothing to revert to.
    #[schema(required = true)]
    previous_preset: Option<PresetChoice>,
}

/// A header preset, or `config` for the headers `auth.proxy.*_header` configures.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PresetChoice {
    Config,
    Authelia,
    Authentik,
    Oauth2Proxy,
}

impl From<Option<Preset>> for PresetChoice {
    fn from(p: Option<Preset>) -> Self {
        match p {
            None => PresetChoice::Config,
            Some(Preset::Authelia) => PresetChoice::Authelia,
            Some(Preset::Authentik) => PresetChoice::Authentik,
            Some(Preset::Oauth2Proxy) => PresetChoice::Oauth2Proxy,
        }
    }
}

async fn proxy_dto(state: &AppState) -> Result<ProxyDto, ApiError> {
    let cfg = &state.config.auth.proxy;
    let previous = proxy::previous_preset(&state.db)
        .await?
        .map(PresetChoice::from);
    Ok(ProxyDto {
        enabled: cfg.enabled,
        trusted_proxies: cfg.trusted_proxies.clone(),
        // As the sign-in reads it (the configuration was checked at start).
        policy: Policy::parse(&cfg.policy).unwrap_or_default(),
        admin_groups: cfg.admin_groups.clone(),
        viewer_groups: cfg.viewer_groups.clone(),
        headers: state.proxy.headers_now(&state.db, cfg).await,
        configured_headers: cfg.configured_headers(),
        preset: state.proxy.current(&state.db).await,
        previous_preset: previous,
    })
}

/// `GET /api/admin/proxy`.
#[utoipa::path(
    get,
    path = "/api/admin/proxy",
    summary = "Get the forward-auth proxy settings",
    description = "Admins only.",
    responses((status = OK, description = "The settings and the preset", body = ProxyDto))
)]
pub async fn get(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<ProxyDto>, ApiError> {
    Ok(Json(proxy_dto(&state).await?))
}

/// The header preset to use: `authelia`, `authentik`, `oauth2-proxy`, or `config` / `null`
/// for the configured headers.
#[derive(Deserialize, ToSchema)]
pub struct PresetRequest {
    /// Left out, `null`, `""` or `config`: the configured headers.
    #[schema(value_type = Option<PresetChoice>)]
    preset: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/admin/proxy/preset",
    summary = "Choose the identity headers' preset",
    description = "Admins only. The headers of a well-known proxy replace the configured ones at once (every \
        instance); the preset replaced can be brought back with `…/preset/revert`.",
    request_body = PresetRequest,
    responses(
        (status = OK, description = "The settings with the preset in force", body = ProxyDto),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown preset: `fields` names `preset`", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    post,
    path = "/api/admin/proxy/preset/revert",
    summary = "Bring back the previous preset",
    description = "Admins only. The preset the last change replaced (`previous_preset`) is back. No body.",
    responses(
        (status = OK, description = "The settings with the preset in force", body = ProxyDto),
        (status = CONFLICT, description = "`NOTHING_TO_REVERT`: `previous_preset` is null", body = ErrorBody),
    )
)]
pub async fn revert_preset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
) -> Result<Json<ProxyDto>, ApiError> {
    proxy::revert_preset(&state.db, &state.proxy, me.actor(&client)).await?;
    Ok(Json(proxy_dto(&state).await?))
}

/// `GET /api/admin/proxy/links`.
#[utoipa::path(
    get,
    path = "/api/admin/proxy/links",
    summary = "List the proxy's links",
    description = "Admins only. The user names a forward-auth proxy sends, linked to accounts (`provider` is \
        `proxy`). Unlink with `DELETE /api/admin/sso/identities/{id}`.",
    responses((status = OK, description = "The links", body = LinkListDto))
)]
pub async fn links(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<LinkListDto>, ApiError> {
    Ok(Json(LinkListDto::of(lookup::proxy_links(&state.db).await?)))
}

/// The user name a forward-auth proxy sends, and the account (username or email) it signs
/// in as (what the `link` policy needs).
#[derive(Deserialize, ToSchema)]
pub struct CreateProxyLinkRequest {
    /// The user name the proxy sends (its user header).
    #[serde(default)]
    #[schema(required = true)]
    proxy_user: String,
    /// The account it signs in as: its username or email (any case).
    #[serde(default)]
    #[schema(required = true)]
    username: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/proxy/links",
    summary = "Link a proxy user name to an account",
    description = "Admins only. What the `link` policy needs before the proxy's user may sign in. The \
        account's sessions end, but the caller's own.",
    request_body = CreateProxyLinkRequest,
    responses(
        (status = CREATED, description = "The link", body = LinkDto),
        (status = CONFLICT, description = "`ALREADY_LINKED` (this account) or `IDENTITY_TAKEN` (another account has this user name), or `BREAK_GLASS_ACCOUNT`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`proxy_user` or `username` is missing, or no account has this name: `fields` names each", body = ErrorBody),
    )
)]
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
#[openapi(paths(get, put_preset, revert_preset, links, create_link))]
pub struct Doc;
