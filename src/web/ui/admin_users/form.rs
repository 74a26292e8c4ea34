//! The create and edit forms of an account (a page, or with htmx an inline row), and the
//! admin's password reset, which re-renders the same form on a mistake.

use crate::web::surface::Surface;
use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::groups::{GroupChoice, choices};
use super::row::Back;
use super::{load, row};
use crate::domain::{FieldErrors, Password, User};
use crate::service::admin::{self, Change, Profile};
use crate::service::{Refusal, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;
use crate::web::user_list::ListParams;

/// Form values of the create/edit form (kept when it re-renders).
#[derive(Deserialize, Default, Clone)]
pub struct UserForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub password_mode: String,
    #[serde(default)]
    pub password: String,
    /// The view of the table the edit was opened from (see `ListParams::query_string`).
    #[serde(default)]
    pub back: String,
}

impl UserForm {
    fn of(u: User) -> Self {
        Self {
            username: u.username,
            email: u.email.unwrap_or_default(),
            display_name: u.display_name.unwrap_or_default(),
            role: u.role.as_str().to_owned(),
            ..Self::default()
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/user_form.html")]
pub struct UserFormPage {
    layout: Layout,
    action: String,
    creating: bool,
    user_id: Option<i64>,
    form: UserForm,
    errors: FieldErrors,
    /// The account's groups (editing only).
    groups: Vec<GroupChoice>,
    /// The signed-in admin edits their own account: no other role is offered.
    is_self: bool,
}

/// The inline edit form that htmx swaps in place of a row.
#[derive(Template)]
#[template(path = "admin/user_edit_row.html")]
struct EditRow {
    id: i64,
    form: UserForm,
    errors: FieldErrors,
    csrf_token: String,
    is_self: bool,
}

async fn edit_row(
    session: &Session,
    me: &CurrentUser,
    id: i64,
    form: UserForm,
    errors: FieldErrors,
) -> Result<Response, UiError> {
    let csrf_token = crate::web::session::csrf_token(session).await?;
    let html = EditRow {
        id,
        form,
        errors,
        csrf_token,
        is_self: me.user.id == id,
    }
    .render()
    .map_err(UiError::internal)?;
    // 200 even with errors: htmx swaps only successful responses by default.
    Ok(Html(html).into_response())
}

/// The edit form of account `id` again with `errors`: inline for htmx, else the page.
async fn edit_again(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    surface: &Surface,
    (id, form): (i64, UserForm),
    errors: FieldErrors,
) -> Result<Response, UiError> {
    if surface.is_fragment() {
        edit_row(session, me, id, form, errors).await
    } else {
        form_error(state, session, me, form, errors, Some(id)).await
    }
}

/// The create (`id` = `None`) or edit page again, with the messages by their fields.
async fn form_error(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    mut form: UserForm,
    errors: FieldErrors,
    id: Option<i64>,
) -> Result<Response, UiError> {
    form.password = String::new();
    let title = if id.is_some() {
        "Edit user"
    } else {
        "New user"
    };
    let groups = match id {
        Some(i) => choices(state, i).await?,
        None => Vec::new(),
    };
    let page = UserFormPage {
        layout: Layout::new(title, state, session, Some(me)).await?,
        action: id.map_or_else(
            || "/admin/users".to_owned(),
            |i| format!("/admin/users/{i}"),
        ),
        creating: id.is_none(),
        user_id: id,
        form,
        errors,
        groups,
        is_self: id == Some(me.user.id),
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn new_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
) -> Result<UserFormPage, UiError> {
    Ok(UserFormPage {
        layout: Layout::new("New user", &state, &session, Some(&me)).await?,
        action: "/admin/users".into(),
        creating: true,
        user_id: None,
        form: UserForm {
            role: "user".into(),
            password_mode: "generate".into(),
            ..UserForm::default()
        },
        errors: FieldErrors::new(),
        groups: Vec::new(),
        is_self: false,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/created.html")]
pub struct CreatedPage {
    layout: Layout,
    username: String,
    one_time_password: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Form(form): Form<UserForm>,
) -> Result<Response, UiError> {
    let password = (form.password_mode == "set").then_some(form.password.as_str());
    let f = &form;
    let result =
        match admin::parse_new_user(&f.username, &f.email, &f.display_name, &f.role, password) {
            Ok((profile, password)) => {
                let actor = me.actor(&client);
                admin::create_user(&state.db, &state.hasher, actor, profile, password).await
            }
            Err(errors) => Err(ServiceError::Validation(errors)),
        };
    match result {
        Ok((user, one_time_password)) => {
            let page = CreatedPage {
                layout: Layout::new("User created", &state, &session, Some(&me)).await?,
                username: user.username,
                one_time_password,
            };
            // The one-time password must not stay in any cache.
            Ok(([(header::CACHE_CONTROL, "no-store")], page).into_response())
        }
        Err(ServiceError::Validation(errors)) => {
            form_error(&state, &session, &me, form, errors, None).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    surface: Surface,
    Path(id): Path<i64>,
    Query(back): Query<Back>,
) -> Result<Response, UiError> {
    let mut form = UserForm::of(load(&state, id).await?);
    form.back = ListParams::from_query_string(&back.back).query_string();
    if surface.is_fragment() {
        return edit_row(&session, &me, id, form, FieldErrors::new()).await;
    }
    let page = UserFormPage {
        layout: Layout::new("Edit user", &state, &session, Some(&me)).await?,
        action: format!("/admin/users/{id}"),
        creating: false,
        user_id: Some(id),
        form,
        errors: FieldErrors::new(),
        groups: choices(&state, id).await?,
        is_self: id == me.user.id,
    };
    Ok(page.into_response())
}

pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path(id): Path<i64>,
    Form(mut form): Form<UserForm>,
) -> Result<Response, UiError> {
    let back = ListParams::from_query_string(&form.back);
    form.back = back.query_string();
    let result = match Profile::parse(&form.username, &form.email, &form.display_name, &form.role) {
        Ok(p) => {
            let actor = me.actor(&client);
            admin::apply(&state.db, &state.hasher, actor, id, Change::Edit(p)).await
        }
        Err(e) => Err(ServiceError::Validation(e)),
    };
    let errors = match result {
        Ok(_) if surface.is_fragment() => {
            let extras = row::Extras {
                back: form.back,
                ..row::Extras::default()
            };
            return row::current(&state, &session, me.user.id, id, extras).await;
        }
        Ok(_) => {
            let to = back.table_url("notice=saved");
            return Ok(Redirect::to(&to).into_response());
        }
        Err(ServiceError::Validation(errors)) => errors,
        Err(ServiceError::Refused(Refusal::Policy(p))) => {
            FieldErrors::single("form", p.to_string())
        }
        Err(e) => return Err(e.into()),
    };
    edit_again(&state, &session, &me, &surface, (id, form), errors).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// The new password, with a refusal keyed by the field of this form.
fn new_password(form: &ResetForm) -> Result<Password, ServiceError> {
    Password::parse_confirmed(&form.new_password, &form.new_password_confirm).map_err(
        |(field, m)| {
            let field = if field == "password" {
                "new_password"
            } else {
                "new_password_confirm"
            };
            ServiceError::Validation(FieldErrors::single(field, m))
        },
    )
}

pub async fn reset_password(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path(id): Path<i64>,
    Form(form): Form<ResetForm>,
) -> Result<Response, UiError> {
    let result = match new_password(&form) {
        Ok(p) => {
            let change = Change::ResetPassword(p);
            admin::apply(&state.db, &state.hasher, me.actor(&client), id, change).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) if surface.is_fragment() => {
            let extras = row::Extras::default();
            row::current(&state, &session, me.user.id, id, extras).await
        }
        Ok(_) => Ok(Redirect::to("/admin/users?notice=password_reset").into_response()),
        Err(ServiceError::Validation(errors)) => {
            let form = UserForm::of(load(&state, id).await?);
            edit_again(&state, &session, &me, &surface, (id, form), errors).await
        }
        Err(e) => Err(e.into()),
    }
}
