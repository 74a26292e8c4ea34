//! `/api/admin/audit` and `/api/admin/settings`: the audit log and the instance settings for
//! scripts, over the same service calls as the admin pages.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiJson;
use crate::service::audit::{self, AuditParams, Event};
use crate::service::settings::{self, RegistrationSettings, Settings};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

/// One audit event. `at` is unix seconds (UTC).
#[derive(Serialize)]
pub struct EventDto {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: String,
    action: String,
    target: Option<String>,
    ip: Option<String>,
    outcome: String,
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
#[derive(Serialize)]
pub struct AuditPageDto {
    events: Vec<EventDto>,
    next: Option<i64>,
}

/// `GET /api/admin/audit?user=&action=&before=`.
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
#[derive(Serialize, Deserialize)]
pub struct SettingsDto {
    registration_enabled: bool,
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
pub async fn get_settings(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<SettingsDto>, ApiError> {
    Ok(Json(settings::get(&state.db).await?.into()))
}

/// `PUT /api/admin/settings` with both fields; answers the settings as saved.
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
#[openapi(paths())]
pub struct Doc;
