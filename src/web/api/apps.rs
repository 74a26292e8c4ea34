//! `/api/admin/apps…`: the apps and their rules for scripts, and the rule tester. Same
//! rules and messages as `/admin/apps`, because both call `service::apps`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiJson;
use crate::domain::Role;
use crate::domain::apps::{Access, AccessKind, AppInput, AppSource, Decision, GroupRef, RuleTest};
use crate::service::apps::{self, AppView};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::ApiError;
use crate::web::guards::RequireAdmin;

#[derive(Serialize)]
pub struct GroupDto {
    id: i64,
    name: String,
}

#[derive(Serialize)]
pub struct UserDto {
    id: i64,
    username: String,
}

/// An app as the API shows it.
#[derive(Serialize)]
pub struct AppDto {
    id: i64,
    name: String,
    url: Option<String>,
    icon: Option<String>,
    hosts: Vec<String>,
    paths: Vec<String>,
    access: AccessKind,
    roles: Vec<Role>,
    groups: Vec<GroupDto>,
    users: Vec<UserDto>,
    viewers_read_only: bool,
    /// `ui`, or `file` for `[[apps]]` (read-only).
    source: AppSource,
}

impl From<AppView> for AppDto {
    fn from(v: AppView) -> Self {
        let a = v.app;
        let roles = match &a.access {
            Access::Restricted { roles, .. } => roles.clone(),
            _ => Vec::new(),
        };
        Self {
            id: a.id,
            name: a.name,
            url: a.url,
            icon: a.icon,
            hosts: a.hosts.iter().map(ToString::to_string).collect(),
            paths: a.paths.iter().map(ToString::to_string).collect(),
            access: a.access.kind(),
            roles,
            groups: v
                .groups
                .into_iter()
                .map(|(id, name)| GroupDto { id, name })
                .collect(),
            users: v
                .users
                .into_iter()
                .map(|(id, username)| UserDto { id, username })
                .collect(),
            viewers_read_only: a.viewers_read_only,
            source: a.source,
        }
    }
}

/// A whole app (POST, PUT). Everything defaults to empty, so a missing field gets the same
/// message by its name as an empty one.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AppBody {
    name: String,
    url: Option<String>,
    icon: Option<String>,
    hosts: Vec<String>,
    paths: Vec<String>,
    access: String,
    roles: Vec<String>,
    /// Names or ids.
    groups: Vec<GroupRef>,
    /// Usernames.
    users: Vec<String>,
    viewers_read_only: bool,
}

impl From<AppBody> for AppInput {
    fn from(b: AppBody) -> Self {
        AppInput {
            name: b.name,
            url: b.url.unwrap_or_default(),
            icon: b.icon.unwrap_or_default(),
            hosts: b.hosts,
            paths: b.paths,
            access: b.access,
            roles: b.roles,
            groups: b.groups,
            users: b.users,
            viewers_read_only: b.viewers_read_only,
        }
    }
}

/// Some fields of an app (PATCH); the others keep their values.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AppPatch {
    name: Option<String>,
    /// `null` or `""` removes the link.
    #[serde(deserialize_with = "present")]
    url: Option<Option<String>>,
    #[serde(deserialize_with = "present")]
    icon: Option<Option<String>>,
    hosts: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    access: Option<String>,
    roles: Option<Vec<String>>,
    groups: Option<Vec<GroupRef>>,
    users: Option<Vec<String>>,
    viewers_read_only: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl AppPatch {
    fn apply(self, mut i: AppInput) -> AppInput {
        if let Some(v) = self.name {
            i.name = v;
        }
        if let Some(v) = self.url {
            i.url = v.unwrap_or_default();
        }
        if let Some(v) = self.icon {
            i.icon = v.unwrap_or_default();
        }
        if let Some(v) = self.hosts {
            i.hosts = v;
        }
        if let Some(v) = self.paths {
            i.paths = v;
        }
        if let Some(v) = self.access {
            i.access = v;
        }
        if let Some(v) = self.roles {
            i.roles = v;
        }
        if let Some(v) = self.groups {
            i.groups = v;
        }
        if let Some(v) = self.users {
            i.users = v;
        }
        if let Some(v) = self.viewers_read_only {
            i.viewers_read_only = v;
        }
        i
    }
}

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
) -> Result<Json<serde_json::Value>, ApiError> {
    let apps: Vec<AppDto> = apps::list(&state.db)
        .await?
        .into_iter()
        .map(AppDto::from)
        .collect();
    Ok(Json(json!({ "apps": apps })))
}

pub async fn get_one(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<AppDto>, ApiError> {
    Ok(Json(apps::get(&state.db, id).await?.into()))
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiJson(body): ApiJson<AppBody>,
) -> Result<(StatusCode, Json<AppDto>), ApiError> {
    let app = apps::create(&state.db, me.actor(&client), body.into()).await?;
    Ok((StatusCode::CREATED, Json(app.into())))
}

/// `PUT`: the whole app, as for a new one.
pub async fn replace(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AppBody>,
) -> Result<Json<AppDto>, ApiError> {
    let app = apps::update(&state.db, me.actor(&client), id, body.into()).await?;
    Ok(Json(app.into()))
}

pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AppPatch>,
) -> Result<Json<AppDto>, ApiError> {
    // The service checks again, inside its transaction, that the app may be changed.
    let current = apps::get(&state.db, id).await?;
    let input = body.apply(current.to_input());
    let app = apps::update(&state.db, me.actor(&client), id, input).await?;
    Ok(Json(app.into()))
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    apps::delete(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TestBody {
    url: String,
    /// Empty or missing: someone not signed in.
    username: Option<String>,
    /// Default `GET`.
    method: Option<String>,
}

/// `POST /api/admin/apps/test`: the rule tester.
pub async fn test(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let username = body.username.unwrap_or_default();
    let method = body.method.unwrap_or_default();
    let tested = apps::test_rule(&state.db, &state.authz, &body.url, &username, &method).await?;
    Ok(Json(test_json(&tested)))
}

fn test_json(t: &RuleTest) -> serde_json::Value {
    let reason = match t.decision {
        Decision::Deny(d) => Some(d.code()),
        _ => None,
    };
    let app = t.rule.as_ref().map(
        |r| json!({ "id": r.id, "name": r.name, "matched_host": r.host, "matched_path": r.path }),
    );
    json!({
        "decision": t.decision.code(),
        "reason": reason,
        "app": app,
        "explanation": t.explanation,
    })
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
