//! `/api/admin/sso…`: the single sign-on wizard for scripts — providers (list, get, create,
//! update, remove, revert, button on/off), "Test discovery" and the sign-in switches. Same
//! rules, messages and audit events as `/admin/sso`, because both call `service::sso`.
//! A client secret is never sent back: `has_client_secret` says whether one is set.
//!
//! Longer than ~500 lines because each handler carries its OpenAPI description
//! (`#[utoipa::path]`) and each body type its field docs: they belong next to the code they
//! describe, and the handlers themselves stay short.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::FieldErrors;
use crate::domain::sso::{Policy, Provider, ProviderFields, Source};
use crate::service::ServiceError;
use crate::service::sso::discovery::{self, Discovery};
use crate::service::sso::{SignInModes, providers};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;
use crate::web::sso_flow;

/// An OpenID Connect provider as the API shows it (never its client secret).
#[derive(Serialize, ToSchema)]
pub struct ProviderDto {
    /// A lowercase slug (letters, digits, `-`, `_`), part of the callback URL.
    id: String,
    /// The sign-in button's text.
    label: String,
    /// The issuer URL, as typed (it must equal the discovery document's `issuer`).
    issuer: String,
    client_id: String,
    /// The provider gave no secret (PKCE only).
    public_client: bool,
    /// A client secret is stored (it is never sent back).
    has_client_secret: bool,
    /// The scopes asked for; `openid` among them.
    scopes: Vec<String>,
    /// The claim that identifies the person at the provider (default `sub`).
    subject_claim: String,
    /// The claim a new account's username comes from (default `preferred_username`).
    username_claim: String,
    /// The claim a new account's email comes from (default `email`).
    email_claim: String,
    /// The claim groups are read from; `null`: groups are not read from this provider.
    #[schema(required = true)]
    groups_claim: Option<String>,
    policy: Policy,
    /// Its button is offered on the sign-in page (while SSO login is on).
    enabled: bool,
    source: Source,
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
            source: p.source,
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

/// The OpenID providers.
#[derive(Serialize, ToSchema)]
pub struct ProviderListDto {
    /// The environment's (`HALLPASS_OIDC_*`) and the stored ones.
    providers: Vec<ProviderDto>,
}

/// The `{id}` of `/api/admin/sso/providers/{id}…`.
const PROVIDER_ID: &str = "The provider's id (its slug)";

#[utoipa::path(
    get,
    path = "/api/admin/sso/providers",
    summary = "List the OpenID providers",
    description = "Admins only.",
    responses((status = OK, description = "Every provider", body = ProviderListDto))
)]
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
#[utoipa::path(
    get,
    path = "/api/admin/sso/providers/{id}",
    summary = "Get an OpenID provider",
    description = "Admins only.",
    params(("id" = String, Path, description = PROVIDER_ID)),
    responses(
        (status = OK, description = "The provider", body = ProviderDto),
        (status = NOT_FOUND, description = "No provider has this id", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    headers: HeaderMap,
    client: Client,
    ApiPath(id): ApiPath<String>,
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
#[derive(Deserialize, Default, ToSchema)]
pub struct ConnectionBody {
    /// The sign-in button's text, at most 60 characters; left out or empty: the id in
    /// title case.
    #[serde(default)]
    label: String,
    /// The issuer URL (`http://` or `https://`, no query or fragment), exactly as the
    /// provider's discovery document names it.
    #[serde(default)]
    #[schema(required = true)]
    issuer: String,
    #[serde(default)]
    #[schema(required = true)]
    client_id: String,
    /// Never sent back. Left out, `null` or empty: the stored one is kept (a new provider
    /// needs one unless `public_client`).
    #[serde(default)]
    client_secret: Option<String>,
    /// The provider gave no secret (PKCE only): any stored secret is removed.
    #[serde(default)]
    public_client: bool,
    /// Must include `openid`; left out or empty: `openid profile email`.
    #[serde(default)]
    scopes: Vec<String>,
    /// Left out or empty: `sub`.
    #[serde(default)]
    subject_claim: String,
    /// Left out or empty: `preferred_username`.
    #[serde(default)]
    username_claim: String,
    /// Left out or empty: `email`.
    #[serde(default)]
    email_claim: String,
    /// Left out, `null` or empty: groups are not read from this provider.
    #[serde(default)]
    groups_claim: Option<String>,
    /// Left out: `link`.
    #[serde(default)]
    #[schema(value_type = Policy)]
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

/// A new provider: its id and its connection settings.
#[derive(Deserialize, ToSchema)]
pub struct CreateProviderRequest {
    /// 1–32 lowercase letters, digits, `-` and `_`, starting with a letter or digit; not
    /// `proxy` or `admin`. It is part of the callback URL and cannot be changed.
    #[serde(default)]
    #[schema(required = true)]
    id: String,
    #[serde(flatten)]
    connection: ConnectionBody,
}

/// Every connection setting of a provider (its id is the URL's).
#[derive(Deserialize, ToSchema)]
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

#[utoipa::path(
    post,
    path = "/api/admin/sso/providers",
    summary = "Add an OpenID provider",
    description = "Admins only. Saved without contacting the provider (test it with \
        `POST /api/admin/sso/discovery` first). Its button is on at once; SSO login itself is \
        switched with `PUT /api/admin/sso/modes`.",
    request_body = CreateProviderRequest,
    responses(
        (status = CREATED, description = "The provider as saved", body = ProviderDto),
        (status = CONFLICT, description = "`PROVIDER_ID_TAKEN`: a provider has this id (`PROVIDER_READ_ONLY`: one from the environment)", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A field is missing or wrong: `fields` names each", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    put,
    path = "/api/admin/sso/providers/{id}",
    summary = "Change an OpenID provider's settings",
    description = "Admins only. Every connection setting (a field left out takes its default), but the \
        client secret, which is kept when left out. The settings replaced can be brought back \
        with `…/revert`. A provider from the environment cannot be changed (409).",
    params(("id" = String, Path, description = PROVIDER_ID)),
    request_body = UpdateProviderRequest,
    responses(
        (status = OK, description = "The provider as saved", body = ProviderDto),
        (status = NOT_FOUND, description = "No stored provider has this id", body = ErrorBody),
        (status = CONFLICT, description = "`PROVIDER_READ_ONLY`: the provider comes from the environment", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A field is missing or wrong: `fields` names each", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    ApiPath(id): ApiPath<String>,
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

/// A provider removed, and what went with it.
#[derive(Serialize, ToSchema)]
pub struct DeletedProviderDto {
    id: String,
    /// The identities linked through it, unlinked with it.
    links_removed: usize,
}

#[utoipa::path(
    delete,
    path = "/api/admin/sso/providers/{id}",
    summary = "Remove an OpenID provider",
    description = "Admins only. Its links go with it, and the sessions of the accounts \
        linked through it end (the caller's own session stays). Refused (409 `LAST_SIGN_IN_METHOD`) when an account \
        would be left with no way to sign in, and for a provider from the environment (409 \
        `PROVIDER_READ_ONLY`).",
    params(("id" = String, Path, description = PROVIDER_ID)),
    responses(
        (status = OK, description = "Removed", body = DeletedProviderDto),
        (status = NOT_FOUND, description = "No stored provider has this id", body = ErrorBody),
        (status = CONFLICT, description = "`PROVIDER_READ_ONLY` or `LAST_SIGN_IN_METHOD`", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeletedProviderDto>, ApiError> {
    // Removing a provider you are linked through ends your other sessions, not this one.
    let actor = me.actor(&client).keeping(session);
    let links_removed = providers::delete(&state.db, &state.config.sso, actor, &id).await?;
    state.oidc.forget(&id);
    Ok(Json(DeletedProviderDto { id, links_removed }))
}

/// `POST /api/admin/sso/providers/{id}/revert`: the previous connection settings are back
/// and SSO login is off (answers the provider as restored).
#[utoipa::path(
    post,
    path = "/api/admin/sso/providers/{id}/revert",
    summary = "Bring back a provider's previous settings",
    description = "Admins only. The settings the last change replaced are back, and SSO login is switched \
        off (the password form stays on) until an admin switches it on again.",
    params(("id" = String, Path, description = PROVIDER_ID)),
    responses(
        (status = OK, description = "The provider as restored", body = ProviderDto),
        (status = NOT_FOUND, description = "No stored provider has this id", body = ErrorBody),
        (status = CONFLICT, description = "`NOTHING_TO_REVERT`: no previous settings (`has_previous` is false)", body = ErrorBody),
    )
)]
pub async fn revert(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    ApiPath(id): ApiPath<String>,
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

/// The provider's sign-in button on or off.
#[derive(Deserialize, ToSchema)]
pub struct EnabledRequest {
    enabled: bool,
}

#[utoipa::path(
    put,
    path = "/api/admin/sso/providers/{id}/enabled",
    summary = "Switch a provider's sign-in button on or off",
    description = "Admins only.",
    params(("id" = String, Path, description = PROVIDER_ID)),
    request_body = EnabledRequest,
    responses(
        (status = OK, description = "The provider", body = ProviderDto),
        (status = NOT_FOUND, description = "No stored provider has this id", body = ErrorBody),
        (status = CONFLICT, description = "`PROVIDER_READ_ONLY`: the provider comes from the environment", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`enabled` is missing or not a boolean", body = ErrorBody),
    )
)]
pub async fn set_enabled(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    headers: HeaderMap,
    client: Client,
    ApiPath(id): ApiPath<String>,
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
#[derive(Serialize, ToSchema)]
pub struct DiscoveryDto {
    /// The provider answered with a usable discovery document and signing keys.
    ok: bool,
    outcome: DiscoveryOutcome,
    /// One sentence for people: what was found, or what is wrong.
    message: String,
}

/// What "Test discovery" found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryOutcome {
    /// A usable discovery document and signing keys (`ok: true`).
    Ok,
    /// The provider answered, but not with a usable document (a 4xx status, another
    /// issuer, endpoints missing): the issuer typed or the provider's setup is wrong.
    Misconfigured,
    /// The provider could not be reached, or answered with a 5xx status.
    Unreachable,
}

impl DiscoveryDto {
    fn of(found: Discovery) -> Result<Self, ApiError> {
        let outcome = match &found {
            Discovery::BadIssuer(m) => {
                let errors = FieldErrors::single("issuer", m.clone());
                return Err(ServiceError::Validation(errors).into());
            }
            Discovery::Found { .. } => DiscoveryOutcome::Ok,
            Discovery::Misconfigured(_) => DiscoveryOutcome::Misconfigured,
            Discovery::Unreachable(_) => DiscoveryOutcome::Unreachable,
        };
        Ok(Self {
            ok: found.ok(),
            outcome,
            message: found.message(),
        })
    }
}

/// An issuer to test before a provider is saved.
#[derive(Deserialize, ToSchema)]
pub struct DiscoveryRequest {
    /// The issuer URL to test.
    #[serde(default)]
    #[schema(required = true)]
    issuer: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/sso/discovery",
    summary = "Test an issuer's discovery",
    description = "Admins only. Fetches the issuer's `/.well-known/openid-configuration` and signing keys, \
        as they are now (nothing is cached or saved). A provider that cannot be reached or read \
        is an answer (200, `ok: false`), not an error.",
    request_body = DiscoveryRequest,
    responses(
        (status = OK, description = "What was found", body = DiscoveryDto),
        (status = UNPROCESSABLE_ENTITY, description = "The issuer is not an http(s) URL: `fields` names `issuer`", body = ErrorBody),
    )
)]
pub async fn test_discovery(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiJson(body): ApiJson<DiscoveryRequest>,
) -> Result<Json<DiscoveryDto>, ApiError> {
    let found = discovery::test(&state.oidc, &body.issuer).await;
    Ok(Json(DiscoveryDto::of(found)?))
}

/// `POST /api/admin/sso/providers/{id}/discovery`: tests a provider's current issuer.
#[utoipa::path(
    post,
    path = "/api/admin/sso/providers/{id}/discovery",
    summary = "Test a provider's discovery",
    description = "Admins only. As `POST /api/admin/sso/discovery`, with the provider's saved issuer. No body.",
    params(("id" = String, Path, description = PROVIDER_ID)),
    responses(
        (status = OK, description = "What was found", body = DiscoveryDto),
        (status = NOT_FOUND, description = "No provider has this id", body = ErrorBody),
    )
)]
pub async fn test_provider_discovery(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<String>,
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
#[derive(Serialize, ToSchema)]
pub struct ModesDto {
    /// SSO login is switched on (as stored).
    sso_enabled: bool,
    /// The password form is switched on (as stored).
    local_login_enabled: bool,
    /// The sign-in page offers the providers' buttons now.
    sso_in_force: bool,
    /// The sign-in page offers the password form now.
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
#[utoipa::path(
    get,
    path = "/api/admin/sso/modes",
    summary = "Get the sign-in switches",
    description = "Admins only.",
    responses((status = OK, description = "As stored and as in force", body = ModesDto))
)]
pub async fn get_modes(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<ModesDto>, ApiError> {
    Ok(Json(
        providers::modes(&state.db, &state.config.sso).await?.into(),
    ))
}

/// Both sign-in switches, like the overview's form.
#[derive(Deserialize, ToSchema)]
pub struct ModesRequest {
    /// Offer the providers' buttons on the sign-in page.
    sso_enabled: bool,
    /// Offer the password form on the sign-in page.
    local_login_enabled: bool,
}

#[utoipa::path(
    put,
    path = "/api/admin/sso/modes",
    summary = "Set the sign-in switches",
    description = "Admins only. Both switches at once. The password form can only be switched off with SSO \
        login on and at least one active admin linked through an enabled provider (else 422, keyed \
        `local_login_enabled`), so nobody is locked out.",
    request_body = ModesRequest,
    responses(
        (status = OK, description = "As stored and as in force", body = ModesDto),
        (status = UNPROCESSABLE_ENTITY, description = "A switch is missing, or the password form cannot be switched off yet", body = ErrorBody),
    )
)]
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
#[openapi(paths(
    list,
    get_one,
    create,
    update,
    delete,
    revert,
    set_enabled,
    test_discovery,
    test_provider_discovery,
    get_modes,
    put_modes
))]
pub struct Doc;
