//! `/api/admin/sso…`: the single sign-on wizard for scripts — providers (list, get, create,
//! update, remove, revert, button on/off), "Test discovery" and the sign-in switches. Same
//! rules, messages and audit events as `/admin/sso`, because both call `service::sso`.
//! A client secret is never sent back: `has_client_secret` says whether one is set.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::domain::FieldErrors;
use crate::domain::sso::{Policy, Provider, ProviderFields, Source};
use crate::service::ServiceError;
use crate::service::sso::discovery::{self, Discovery};
use crate::service::sso::{SignInModes, providers};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;
use crate::web::sso_flow;

/// A provider as the API shows it (never its client secret).
#[derive(Serialize)]
pub struct ProviderDto {
    id: String,
    label: String,
    issuer: String,
    client_id: String,
    /// The provider gave no secret (PKCE only).
    public_client: bool,
    has_client_secret: bool,
    scopes: Vec<String>,
    subject_claim: String,
    username_claim: String,
    email_claim: String,
    groups_claim: Option<String>,
    policy: Policy,
    /// Its button is offered on the sign-in page (while SSO login is on).
    enabled: bool,
    /// `ui`, or `env` for `HALLPASS_OIDC_*` providers (read-only).
    source: &'static str,
    /// "Revert to previous" has settings to bring back.
    has_previous: bool,
    /// What to register at the provider as the redirect (callback) URI.
    redirect_uri: String,
}

/// The request a provider is shown for: its redirect URI depends on the public URL.
struct Shown<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    client: &'a Client,
}

impl Shown<'_> {
    async fn dto(&self, p: Provider) -> Result<ProviderDto, ApiError> {
        let stored = providers::stored_state(&self.state.db, &p.id).await?;
        Ok(ProviderDto {
            redirect_uri: sso_flow::redirect_uri(self.state, self.headers, self.client, &p.id),
            public_client: p.is_public_client(),
            has_client_secret: p.client_secret.is_some()
                || stored.as_ref().is_some_and(|s| s.has_secret),
            has_previous: stored.is_some_and(|s| s.has_previous),
            source: match p.source {
                Source::Env => "env",
                Source::Ui => "ui",
            },
            id: p.id,
            label: p.label,
            issuer: p.issuer,
            client_id: p.client_id,
            scopes: p.scopes,
            subject_claim: p.subject_claim,
            username_claim: p.username_claim,
            email_claim: p.email_claim,
            groups_claim: p.groups_claim,
            policy: p.policy,
            enabled: p.enabled,
        })
    }

    /// Provider `id` as it is now, or 404.
    async fn find(&self, id: &str) -> Result<ProviderDto, ApiError> {
        let s = self.state;
        let p = providers::find(&s.db, &s.secret, &s.config.sso, id)
            .await?
            .ok_or(crate::service::Missing::Provider)
            .map_err(ServiceError::from)?;
        self.dto(p).await
    }
}

/// `GET /api/admin/sso/providers`.
#[derive(Serialize)]
pub struct ProviderListDto {
    providers: Vec<ProviderDto>,
}

pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    headers: HeaderMap,
    client: Client,
) -> Result<Json<ProviderListDto>, ApiError> {
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let mut out = Vec::with_capacity(all.len());
    for p in all {
        out.push(shown.dto(p).await?);
    }
    Ok(Json(ProviderListDto { providers: out }))
}

/// `GET /api/admin/sso/providers/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<ProviderDto>, ApiError> {
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    Ok(Json(shown.find(&id).await?))
}

/// A provider's connection settings as a script sends them. Left out: the wizard's defaults
/// (scopes `openid profile email`, claims `sub`, `preferred_username`, `email`, policy
/// `link`). `client_secret` left out or empty keeps the stored one (a new provider needs one
/// unless `public_client`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionBody {
    label: String,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    public_client: bool,
    scopes: Vec<String>,
    subject_claim: String,
    username_claim: String,
    email_claim: String,
    /// Left out or empty: groups are not read from this provider.
    groups_claim: Option<String>,
    policy: String,
}

impl ConnectionBody {
    /// The same raw fields the form sends, so one parser checks both.
    fn fields(self, id: String) -> ProviderFields {
        ProviderFields {
            id,
            label: self.label,
            issuer: self.issuer,
            client_id: self.client_id,
            client_secret: self.client_secret.unwrap_or_default(),
            public_client: self.public_client.then(|| "on".to_owned()),
            scopes: self.scopes.join(" "),
            subject_claim: self.subject_claim,
            username_claim: self.username_claim,
            email_claim: self.email_claim,
            groups_claim: self.groups_claim.unwrap_or_default(),
            policy: self.policy,
        }
    }
}

/// `POST /api/admin/sso/providers`: a new provider (answered 201).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CreateProviderRequest {
    id: String,
    #[serde(flatten)]
    connection: ConnectionBody,
}

/// `PUT /api/admin/sso/providers/{id}`: every connection setting (the id is the URL's).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UpdateProviderRequest {
    #[serde(flatten)]
    connection: ConnectionBody,
}

/// Parses and saves `fields`; the OpenID runtime forgets what it cached of the provider.
async fn save(
    state: &AppState,
    me: &crate::web::identity::CurrentUser,
    client: &Client,
    fields: ProviderFields,
    is_new: bool,
) -> Result<String, ApiError> {
    let input = fields.parse(is_new).map_err(ServiceError::Validation)?;
    let id = input.id.clone();
    let actor = me.actor(client);
    providers::save(
        &state.db,
        &state.secret,
        &state.config.sso,
        actor,
        input,
        is_new,
    )
    .await?;
    state.oidc.forget(&id);
    Ok(id)
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    ApiJson(body): ApiJson<CreateProviderRequest>,
) -> Result<(StatusCode, Json<ProviderDto>), ApiError> {
    let fields = body.connection.fields(body.id);
    let id = save(&state, &me, &client, fields, true).await?;
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    Ok((StatusCode::CREATED, Json(shown.find(&id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProviderRequest>,
) -> Result<Json<ProviderDto>, ApiError> {
    let id = save(&state, &me, &client, body.connection.fields(id), false).await?;
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    Ok(Json(shown.find(&id).await?))
}

/// `DELETE /api/admin/sso/providers/{id}`: what went with it.
#[derive(Serialize)]
pub struct DeletedProviderDto {
    id: String,
    links_removed: usize,
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<DeletedProviderDto>, ApiError> {
    let actor = me.actor(&client);
    let links_removed = providers::delete(&state.db, &state.config.sso, actor, &id).await?;
    state.oidc.forget(&id);
    Ok(Json(DeletedProviderDto { id, links_removed }))
}

/// `POST /api/admin/sso/providers/{id}/revert`: the previous connection settings are back
/// and SSO login is off (answers the provider as restored).
pub async fn revert(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<ProviderDto>, ApiError> {
    providers::revert(&state.db, me.actor(&client), &id).await?;
    state.oidc.forget(&id);
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    Ok(Json(shown.find(&id).await?))
}

/// `PUT /api/admin/sso/providers/{id}/enabled`: the provider's sign-in button on or off.
#[derive(Deserialize)]
pub struct EnabledRequest {
    enabled: bool,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EnabledRequest>,
) -> Result<Json<ProviderDto>, ApiError> {
    let actor = me.actor(&client);
    providers::set_enabled(&state.db, &state.config.sso, actor, &id, body.enabled).await?;
    let shown = Shown {
        state: &state,
        headers: &headers,
        client: &client,
    };
    Ok(Json(shown.find(&id).await?))
}

/// What "Test discovery" found. A failure to reach or read the provider is a result (200,
/// `ok: false`); an issuer that is not a URL is bad input (422).
#[derive(Serialize)]
pub struct DiscoveryDto {
    ok: bool,
    /// `ok`, `misconfigured` (the settings or the provider's setup) or `unreachable`.
    outcome: &'static str,
    message: String,
}

impl DiscoveryDto {
    fn of(found: Discovery) -> Result<Self, ApiError> {
        if let Discovery::BadIssuer(m) = &found {
            let errors = FieldErrors::single("issuer", m.clone());
            return Err(ServiceError::Validation(errors).into());
        }
        Ok(Self {
            ok: found.ok(),
            outcome: found.code(),
            message: found.message(),
        })
    }
}

/// `POST /api/admin/sso/discovery`: tests an issuer before a provider is saved.
#[derive(Deserialize)]
pub struct DiscoveryRequest {
    #[serde(default)]
    issuer: String,
}

pub async fn test_discovery(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiJson(body): ApiJson<DiscoveryRequest>,
) -> Result<Json<DiscoveryDto>, ApiError> {
    let found = discovery::test(&state.oidc, &body.issuer).await;
    Ok(Json(DiscoveryDto::of(found)?))
}

/// `POST /api/admin/sso/providers/{id}/discovery`: tests a provider's current issuer.
pub async fn test_provider_discovery(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Path(id): Path<String>,
) -> Result<Json<DiscoveryDto>, ApiError> {
    let p = providers::find(&state.db, &state.secret, &state.config.sso, &id)
        .await?
        .ok_or(crate::service::Missing::Provider)
        .map_err(ServiceError::from)?;
    let found = discovery::test(&state.oidc, &p.issuer).await;
    Ok(Json(DiscoveryDto::of(found)?))
}

/// The sign-in switches: as stored, and as in force (the break-glass override and "no
/// usable provider" turn SSO off and the password form on without changing what is stored).
#[derive(Serialize)]
pub struct ModesDto {
    sso_enabled: bool,
    local_login_enabled: bool,
    sso_in_force: bool,
    local_login_in_force: bool,
    /// `HALLPASS_SSO_DISABLE_OVERRIDE` is set.
    overridden: bool,
}

impl From<SignInModes> for ModesDto {
    fn from(m: SignInModes) -> Self {
        Self {
            sso_enabled: m.stored_sso,
            local_login_enabled: m.stored_local,
            sso_in_force: m.sso,
            local_login_in_force: m.local,
            overridden: m.overridden,
        }
    }
}

/// `GET /api/admin/sso/modes`.
pub async fn get_modes(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<ModesDto>, ApiError> {
    Ok(Json(
        providers::modes(&state.db, &state.config.sso).await?.into(),
    ))
}

/// `PUT /api/admin/sso/modes`: both switches, like the overview's form.
#[derive(Deserialize)]
pub struct ModesRequest {
    sso_enabled: bool,
    local_login_enabled: bool,
}

pub async fn put_modes(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<ModesRequest>,
) -> Result<Json<ModesDto>, ApiError> {
    let (sso, local) = (body.sso_enabled, body.local_login_enabled);
    let (db, env) = (&state.db, &state.config.sso);
    providers::set_sign_in_modes(db, &state.secret, env, me.actor(&client), sso, local).await?;
    Ok(Json(providers::modes(db, env).await?.into()))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
