//! The add and edit form of an app (read-only for apps from `[[apps]]`), and its removal
//! behind a confirmation page. A mistake re-renders the form with the input kept and each
//! message by its field.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::FieldErrors;
use crate::domain::apps::{AppInput, AppSource, GroupRef, split_lines};
use crate::service::ServiceError;
use crate::service::apps;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{UiError, conflict_message};
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;
use crate::web::ui::sso::ConfirmPage;

/// The form's fields as posted (and as re-rendered). Roles are one checkbox each: a
/// urlencoded form cannot carry a list in one name here.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct AppForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub icon: String,
    /// One host pattern per line.
    #[serde(default)]
    pub hosts: String,
    /// One path prefix per line.
    #[serde(default)]
    pub paths: String,
    #[serde(default)]
    pub access: String,
    #[serde(default)]
    pub role_admin: Option<String>,
    #[serde(default)]
    pub role_user: Option<String>,
    #[serde(default)]
    pub role_viewer: Option<String>,
    /// Group names (or ids), one per line or comma-separated.
    #[serde(default)]
    pub groups: String,
    /// Usernames, one per line or comma-separated.
    #[serde(default)]
    pub users: String,
    #[serde(default)]
    pub viewers_read_only: Option<String>,
}

impl AppForm {
    fn input(&self) -> AppInput {
        let roles = [
            ("admin", &self.role_admin),
            ("user", &self.role_user),
            ("viewer", &self.role_viewer),
        ]
        .into_iter()
        .filter(|(_, on)| on.is_some())
        .map(|(r, _)| r.to_owned())
        .collect();
        AppInput {
            name: self.name.clone(),
            url: self.url.clone(),
            icon: self.icon.clone(),
            hosts: split_lines(&self.hosts, true),
            paths: split_lines(&self.paths, false),
            access: self.access.clone(),
            roles,
            groups: split_lines(&self.groups, true)
                .into_iter()
                .map(GroupRef::Name)
                .collect(),
            users: split_lines(&self.users, true),
            viewers_read_only: self.viewers_read_only.is_some(),
        }
    }

    fn of(i: &AppInput) -> Self {
        let has = |r: &str| i.roles.iter().any(|x| x == r).then(|| "on".to_owned());
        Self {
            name: i.name.clone(),
            url: i.url.clone(),
            icon: i.icon.clone(),
            hosts: i.hosts.join("\n"),
            paths: i.paths.join("\n"),
            access: i.access.clone(),
            role_admin: has("admin"),
            role_user: has("user"),
            role_viewer: has("viewer"),
            groups: i
                .groups
                .iter()
                .map(|g| match g {
                    GroupRef::Name(n) => n.clone(),
                    GroupRef::Id(id) => id.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            users: i.users.join("\n"),
            viewers_read_only: i.viewers_read_only.then(|| "on".to_owned()),
        }
    }

    fn blank() -> Self {
        Self {
            access: "signed_in".into(),
            ..Self::default()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/app_form.html")]
pub struct AppFormPage {
    layout: Layout,
    /// `None`: a new app.
    id: Option<i64>,
    /// From `[[apps]]`: shown, not editable.
    read_only: bool,
    form: AppForm,
    errors: FieldErrors,
    error: Option<String>,
}

async fn form_page(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    id: Option<i64>,
) -> Result<AppFormPage, UiError> {
    let (form, read_only, title) = match id {
        None => (AppForm::blank(), false, "Add an app".to_owned()),
        Some(id) => {
            let view = apps::get(&state.db, id).await?;
            let title = format!("App: {}", view.app.name);
            (
                AppForm::of(&view.to_input()),
                view.app.source == AppSource::File,
                title,
            )
        }
    };
    Ok(AppFormPage {
        layout: Layout::new(title, state, session, Some(me)).await?,
        id,
        read_only,
        form,
        errors: FieldErrors::new(),
        error: None,
    })
}

pub async fn new_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
) -> Result<AppFormPage, UiError> {
    form_page(&state, &session, &me, None).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<AppFormPage, UiError> {
    form_page(&state, &session, &me, Some(id)).await
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Form(form): Form<AppForm>,
) -> Result<Response, UiError> {
    let saved = apps::create(&state.db, me.actor(&client), form.input()).await;
    after_save(&state, &session, &me, None, form, saved.map(|_| "created")).await
}

pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
    Form(form): Form<AppForm>,
) -> Result<Response, UiError> {
    let saved = apps::update(&state.db, me.actor(&client), id, form.input()).await;
    after_save(
        &state,
        &session,
        &me,
        Some(id),
        form,
        saved.map(|_| "saved"),
    )
    .await
}

/// Back to the table with a notice, or the form again with what was wrong (a refusal such
/// as "read-only" above the form, input problems by their fields).
async fn after_save(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    id: Option<i64>,
    form: AppForm,
    saved: Result<&'static str, ServiceError>,
) -> Result<Response, UiError> {
    let (errors, error) = match saved {
        Ok(notice) => {
            return Ok(Redirect::to(&format!("/admin/apps?notice={notice}")).into_response());
        }
        Err(ServiceError::Validation(errors)) => (errors, None),
        Err(e) if let Some(message) = conflict_message(&e) => (FieldErrors::new(), Some(message)),
        Err(e) => return Err(e.into()),
    };
    let mut page = form_page(state, session, me, id).await?;
    if !page.read_only {
        page.form = form;
    }
    page.errors = errors;
    page.error = error;
    let status = if page.error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, page).into_response())
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<ConfirmPage, UiError> {
    let view = apps::get(&state.db, id).await?;
    if view.app.source == AppSource::File {
        return Err(crate::service::Refusal::AppReadOnly(view.app.name).into());
    }
    Ok(ConfirmPage::new(
        Layout::new("Remove app", &state, &session, Some(&me)).await?,
        format!(
            "Remove {}? Requests to its hosts then get the rule of the next matching app, or auth.forward.default_policy.",
            view.app.name
        ),
        format!("/admin/apps/{id}/delete"),
        "Remove app",
        format!("/admin/apps/{id}"),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Redirect, UiError> {
    apps::delete(&state.db, me.actor(&client), id).await?;
    Ok(Redirect::to("/admin/apps?notice=deleted"))
}
