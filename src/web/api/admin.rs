//! `/api/admin/audit` and `/api/admin/settings`: the audit log and the instance settings for
//! scripts, over the same service calls as the admin pages.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiJson;
use crate::service::audit::{self, AuditParams, Event};
use crate::service::settings::{self, RegistrationSettings, Settings};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// One audit event. `at` is unix seconds (UTC).
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct EventDto {
    /// Increasing: newer events have larger ids.
    id: i64,
    /// When, in unix seconds (UTC).
    at: i64,
    /// The account that acted; `null` for an anonymous attempt (a failed sign-in) or the
    /// system (the recovery command).
    #[schema(required = true)]
    actor_id: Option<i64>,
    /// Who acted, by name as it was then (`anonymous` when nobody was signed in).
    actor: String,
    /// What happened, e.g. `login.success`, `user.disable`, `settings.update`.
    action: String,
    /// What it was done to (a username, a group's name, …); `null` when nothing.
    #[schema(required = true)]
    target: Option<String>,
    /// The client's address; `null` when unknown (the command line).
    #[schema(required = true)]
    ip: Option<String>,
    /// `success`, `failure`, or `refused` (by the rate limit).
    outcome: String,
    /// More about it (e.g. `status active -> disabled`); `null` when nothing.
    #[schema(required = true)]
    detail: Option<String>,
}

impl From<Event> for EventDto {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor: e.actor,
            action: e.action,
            target: e.target,
            ip: e.ip,
            outcome: e.outcome,
            detail: e.detail,
        }
    }
}

/// A page of events, newest first; pass `next` back as `before` for the older page.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditPage)]
pub struct AuditPageDto {
    /// Newest first, at most 50.
    events: Vec<EventDto>,
    /// Pass back as `before` (with the same filters) for the older page; `null` on the last.
    #[schema(required = true)]
    next: Option<i64>,
}

/// `GET /api/admin/audit?user=&action=&before=`.
#[utoipa::path(
    get,
    path = "/api/admin/audit",
    summary = "The audit log, a page at a time",
    description = "Admins only. Newest first, 50 a page.",
    params(AuditParams),
    responses(
        (status = OK, description = "A page of events", body = AuditPageDto),
        (status = BAD_REQUEST, description = "`BAD_REQUEST`: `before` is not an event id",
            body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(params): Query<AuditParams>,
) -> Result<Json<AuditPageDto>, ApiError> {
    let q = params
        .to_query()
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m))?;
    let page = audit::page(&state.db, &q).await?;
    Ok(Json(AuditPageDto {
        events: page.events.into_iter().map(EventDto::from).collect(),
        next: page.next,
    }))
}

/// The settings as the API shows and accepts them.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = Settings)]
pub struct SettingsDto {
    /// Whether `/register` lets people ask for an account.
    registration_enabled: bool,
    /// Whether new registrations are active at once (`true`) or wait for an admin's approval
    /// (`false`, status `pending`).
    auto_approve_registrations: bool,
}

impl From<Settings> for SettingsDto {
    fn from(s: Settings) -> Self {
        Self {
            registration_enabled: s.registration_enabled,
            auto_approve_registrations: s.auto_approve_registrations,
        }
    }
}

/// `GET /api/admin/settings`.
#[utoipa::path(
    get,
    path = "/api/admin/settings",
    summary = "The registration settings",
    description = "Admins only.",
    responses((status = OK, description = "The settings", body = SettingsDto))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<SettingsDto>, ApiError> {
    Ok(Json(settings::get(&state.db).await?.into()))
}

/// `PUT /api/admin/settings` with both fields; answers the settings as saved.
#[utoipa::path(
    put,
    path = "/api/admin/settings",
    summary = "Change the registration settings",
    description = "Admins only. Both fields are required.",
    request_body = SettingsDto,
    responses(
        (status = OK, description = "The settings as saved", body = SettingsDto),
        (status = UNPROCESSABLE_ENTITY, description = "`BAD_REQUEST`: a field is missing or \
            not a boolean", body = ErrorBody),
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<SettingsDto>,
) -> Result<Json<SettingsDto>, ApiError> {
    let new = RegistrationSettings {
        registration_enabled: body.registration_enabled,
        auto_approve_registrations: body.auto_approve_registrations,
    };
    let saved = settings::update(&state.db, me.actor(&client), new).await?;
    Ok(Json(saved.into()))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(audit, get_settings, put_settings))]
pub struct Doc;
