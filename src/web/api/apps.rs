//! `/api/admin/apps…`: the apps and their rules for scripts, and the rule tester. Same
//! rules and messages as `/admin/apps`, because both call `service::apps`.
//!
//! Longer than ~500 lines because each handler carries its OpenAPI description
//! (`#[utoipa::path]`) and each body type its field docs, next to the code they describe.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiJson, ApiPath};
use crate::domain::Role;
use crate::domain::apps::{
    Access, AccessKind, AppInput, AppSource, Decision, Denied, GroupRef, RuleTest,
};
use crate::service::apps::{self, AppView};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, ErrorBody};
use crate::web::guards::RequireAdmin;

/// A group an app's rule lists.
#[derive(Serialize, ToSchema)]
pub struct AppGroupDto {
    id: i64,
    name: String,
}

/// An account an app's rule lists.
#[derive(Serialize, ToSchema)]
pub struct AppUserDto {
    id: i64,
    username: String,
}

/// An app Hallpass guards through forward-auth, and who may open it.
#[derive(Serialize, ToSchema)]
pub struct AppDto {
    id: i64,
    name: String,
    /// The link on the portal; `null`: the app is not on the portal.
    #[schema(required = true)]
    url: Option<String>,
    /// The portal icon: an emoji or a few letters, or an image address (`http(s)://…` or a
    /// path starting with `/`); `null`: none.
    #[schema(required = true)]
    icon: Option<String>,
    /// Host patterns (`app.example.com`, `*.example.com`), lower case; at least one.
    hosts: Vec<String>,
    /// Path prefixes, each starting with `/`; empty: every path of its hosts.
    paths: Vec<String>,
    access: AccessKind,
    /// With `restricted`: the roles let in; empty otherwise.
    roles: Vec<Role>,
    /// With `restricted`: the groups let in; empty otherwise.
    groups: Vec<AppGroupDto>,
    /// With `restricted`: the accounts let in by name; empty otherwise.
    users: Vec<AppUserDto>,
    /// Accounts with the `viewer` role may only `GET`, `HEAD` and `OPTIONS`.
    viewers_read_only: bool,
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
                .map(|(id, name)| AppGroupDto { id, name })
                .collect(),
            users: v
                .users
                .into_iter()
                .map(|(id, username)| AppUserDto { id, username })
                .collect(),
            viewers_read_only: a.viewers_read_only,
            source: a.source,
        }
    }
}

/// A whole app (POST, PUT). Everything defaults to empty, so a missing field gets the same
/// message by its name as an empty one (422 with `fields`).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppBody {
    /// At most 64 characters; unique among apps (any case).
    #[serde(default)]
    #[schema(required = true)]
    name: String,
    /// The portal link, a full `http://` or `https://` address; `null` or `""`: the app is
    /// not on the portal.
    #[serde(default)]
    url: Option<String>,
    /// An emoji or up to 16 characters of text, or an image address (`http(s)://…` or a path
    /// starting with `/`); `null` or `""`: none.
    #[serde(default)]
    icon: Option<String>,
    /// Host patterns (`app.example.com`, `*.example.com`), at least one, at most 100.
    #[serde(default)]
    #[schema(required = true)]
    hosts: Vec<String>,
    /// Path prefixes starting with `/`, at most 100; empty: every path of its hosts.
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    #[schema(required = true, value_type = AccessKind)]
    access: String,
    /// With `restricted` only.
    #[serde(default)]
    #[schema(value_type = Vec<Role>)]
    roles: Vec<String>,
    /// With `restricted` only: groups by name or id, at most 100.
    #[serde(default)]
    groups: Vec<GroupRef>,
    /// With `restricted` only: usernames, at most 100.
    #[serde(default)]
    users: Vec<String>,
    /// Accounts with the `viewer` role may only `GET`, `HEAD` and `OPTIONS`.
    #[serde(default)]
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

/// Some fields of an app (PATCH); the others keep their values. The fields mean what they
/// mean in a whole app, and the result is checked as a whole. `null` is the same as leaving
/// a field out, but for `url` and `icon`, where it removes the value.
#[derive(Deserialize, Default, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AppPatch {
    name: Option<String>,
    /// `null` or `""` removes the link.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    url: Option<Option<String>>,
    /// `null` or `""` removes the icon.
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    icon: Option<Option<String>>,
    hosts: Option<Vec<String>>,
    paths: Option<Vec<String>>,
    #[schema(value_type = Option<AccessKind>)]
    access: Option<String>,
    #[schema(value_type = Option<Vec<Role>>)]
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

/// The apps.
#[derive(Serialize, ToSchema)]
pub struct AppListDto {
    /// By name (any case).
    apps: Vec<AppDto>,
}

/// The `{id}` of `/api/admin/apps/{id}`.
const APP_ID: &str = "The app's id";

#[utoipa::path(
    get,
    path = "/api/admin/apps",
    summary = "List the apps",
    description = "Admins only. Every app and its rule, the ones of the configuration file (`source: file`) \
        included.",
    responses((status = OK, description = "The apps, by name", body = AppListDto))
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<AppListDto>, ApiError> {
    let apps: Vec<AppDto> = apps::list(&state.db)
        .await?
        .into_iter()
        .map(AppDto::from)
        .collect();
    Ok(Json(AppListDto { apps }))
}

#[utoipa::path(
    get,
    path = "/api/admin/apps/{id}",
    summary = "Get an app",
    description = "Admins only.",
    params(("id" = i64, Path, description = APP_ID)),
    responses(
        (status = OK, description = "The app", body = AppDto),
        (status = NOT_FOUND, description = "No app has this id", body = ErrorBody),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AppDto>, ApiError> {
    Ok(Json(apps::get(&state.db, id).await?.into()))
}

#[utoipa::path(
    post,
    path = "/api/admin/apps",
    summary = "Add an app",
    description = "Admins only. Forward-auth applies the new rule at once (every instance). Every problem \
        is answered at once, by field: an unknown group or user, a name another app has, \
        roles or groups with an access other than `restricted`, `restricted` without any.",
    request_body = AppBody,
    responses(
        (status = CREATED, description = "The app as saved", body = AppDto),
        (status = UNPROCESSABLE_ENTITY, description = "A field is missing or wrong: `fields` names each", body = ErrorBody),
    )
)]
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
#[utoipa::path(
    put,
    path = "/api/admin/apps/{id}",
    summary = "Replace an app",
    description = "Admins only. The whole app, as for a new one: a field left out is emptied. An app of the \
        configuration file (`source: file`) cannot be changed here (409 `APP_READ_ONLY`).",
    params(("id" = i64, Path, description = APP_ID)),
    request_body = AppBody,
    responses(
        (status = OK, description = "The app as saved", body = AppDto),
        (status = NOT_FOUND, description = "No app has this id", body = ErrorBody),
        (status = CONFLICT, description = "`APP_READ_ONLY`: the app is declared in the configuration file", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A field is missing or wrong: `fields` names each", body = ErrorBody),
    )
)]
pub async fn replace(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AppBody>,
) -> Result<Json<AppDto>, ApiError> {
    let app = apps::update(&state.db, me.actor(&client), id, body.into()).await?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    patch,
    path = "/api/admin/apps/{id}",
    summary = "Change some fields of an app",
    description = "Admins only. The fields sent replace the app's; the result is checked as a whole app. \
        An app of the configuration file cannot be changed here (409 `APP_READ_ONLY`).",
    params(("id" = i64, Path, description = APP_ID)),
    request_body = AppPatch,
    responses(
        (status = OK, description = "The app as saved", body = AppDto),
        (status = NOT_FOUND, description = "No app has this id", body = ErrorBody),
        (status = CONFLICT, description = "`APP_READ_ONLY`: the app is declared in the configuration file", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A field is wrong: `fields` names each", body = ErrorBody),
    )
)]
pub async fn patch(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AppPatch>,
) -> Result<Json<AppDto>, ApiError> {
    // The service checks again, inside its transaction, that the app may be changed.
    let current = apps::get(&state.db, id).await?;
    let input = body.apply(current.to_input());
    let app = apps::update(&state.db, me.actor(&client), id, input).await?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    delete,
    path = "/api/admin/apps/{id}",
    summary = "Remove an app",
    description = "Admins only. Its hosts then fall under `auth.forward.default_policy`. An app of the \
        configuration file cannot be removed here (409 `APP_READ_ONLY`).",
    params(("id" = i64, Path, description = APP_ID)),
    responses(
        (status = NO_CONTENT, description = "Removed"),
        (status = NOT_FOUND, description = "No app has this id", body = ErrorBody),
        (status = CONFLICT, description = "`APP_READ_ONLY`: the app is declared in the configuration file", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    apps::delete(&state.db, me.actor(&client), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A request to test against the rules, as a proxy would ask about it.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// The address requested: `https://host/path`, or a bare host (`grafana.example.com`,
    /// path `/`). The query and fragment are ignored.
    #[serde(default)]
    #[schema(required = true)]
    url: String,
    /// The account asking (username or email, any case); `null`, `""` or left out: someone
    /// not signed in.
    #[serde(default)]
    username: Option<String>,
    /// The HTTP method; `null`, `""` or left out: `GET`.
    #[serde(default)]
    method: Option<String>,
}

/// What forward-auth would answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestDecision {
    /// The request goes through.
    Allow,
    /// Someone not signed in is sent to the sign-in page.
    SignIn,
    /// Refused (403); `reason` says why.
    Deny,
}

/// Why a request is refused.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The rule lists no role, group or name of this account.
    NotListed,
    /// The account is not active (pending, rejected, disabled).
    AccountStatus,
    /// A viewer asked to change something on an app read-only for viewers.
    ReadOnly,
    /// No app matches and `auth.forward.default_policy` is `deny`.
    NoApp,
}

/// The app whose rule decided.
#[derive(Serialize, ToSchema)]
pub struct MatchedAppDto {
    id: i64,
    name: String,
    /// The app's host pattern that matched (the most specific).
    matched_host: String,
    /// The path prefix that matched (the longest); `null` when the app lists none.
    #[schema(required = true)]
    matched_path: Option<String>,
}

/// The rule tester's answer.
#[derive(Serialize, ToSchema)]
pub struct RuleTestDto {
    decision: TestDecision,
    /// With `deny` only; `null` otherwise.
    #[schema(required = true)]
    reason: Option<DenyReason>,
    /// `null`: no app matched, `auth.forward.default_policy` decided.
    #[schema(required = true)]
    app: Option<MatchedAppDto>,
    /// One sentence: the outcome and the rule, for people.
    explanation: String,
}

impl From<RuleTest> for RuleTestDto {
    fn from(t: RuleTest) -> Self {
        let (decision, reason) = match t.decision {
            Decision::Allow => (TestDecision::Allow, None),
            Decision::SignIn => (TestDecision::SignIn, None),
            Decision::Deny(d) => (
                TestDecision::Deny,
                Some(match d {
                    Denied::NotListed => DenyReason::NotListed,
                    Denied::Status(_) => DenyReason::AccountStatus,
                    Denied::ReadOnly => DenyReason::ReadOnly,
                    Denied::NoApp => DenyReason::NoApp,
                }),
            ),
        };
        Self {
            decision,
            reason,
            app: t.rule.map(|r| MatchedAppDto {
                id: r.id,
                name: r.name,
                matched_host: r.host,
                matched_path: r.path,
            }),
            explanation: t.explanation,
        }
    }
}

/// `POST /api/admin/apps/test`: the rule tester.
#[utoipa::path(
    post,
    path = "/api/admin/apps/test",
    summary = "Test a request against the rules",
    description = "Admins only. What forward-auth would answer to this request from this account, decided \
        on the live rules with the account's real role, status and groups. Changes nothing.",
    request_body = TestBody,
    responses(
        (status = OK, description = "The decision and the rule that made it", body = RuleTestDto),
        (status = UNPROCESSABLE_ENTITY, description = "`url`, `method` or `username` is wrong (an unknown account): `fields` names each", body = ErrorBody),
    )
)]
pub async fn test(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Json<RuleTestDto>, ApiError> {
    let username = body.username.unwrap_or_default();
    let method = body.method.unwrap_or_default();
    let tested = apps::test_rule(&state.db, &state.authz, &body.url, &username, &method).await?;
    Ok(Json(tested.into()))
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, get_one, create, replace, patch, delete, test))]
pub struct Doc;
