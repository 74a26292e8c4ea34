//! `/admin/users…`: the user table and its actions. Every action is a plain form (with a
//! confirmation page for destructive ones) and, with JavaScript, an htmx request that swaps
//! just the row. Rules and messages come from `service::admin`, as for the JSON API.

use crate::service::Refusal;
use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, format_time};
use crate::domain::{FieldErrors, Password, Role, Status, User};
use crate::service::ServiceError;
use crate::service::admin::{self, Change, Profile};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::user_list::{ListParams, next_cursor};

/// A row of the table.
pub struct RowView {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub status: Status,
    pub deleted: bool,
    pub created: String,
    pub last_login: String,
    pub methods: String,
    pub is_self: bool,
    pub error: Option<String>,
}

impl RowView {
    fn with_keys(u: &User, me: i64, keys: i64, identities: &[String]) -> Self {
        let mut row = Self::new(u, me);
        let mut methods = Vec::new();
        if u.password_hash.is_some() {
            methods.push("password".to_owned());
        }
        for provider in identities {
            methods.push(if provider == crate::domain::sso::PROXY_PROVIDER {
                "forward-auth proxy".to_owned()
            } else {
                format!("SSO ({provider})")
            });
        }
        match keys {
            0 => {}
            1 => methods.push("1 API key".to_owned()),
            n => methods.push(format!("{n} API keys")),
        }
        row.methods = if methods.is_empty() {
            "none".to_owned()
        } else {
            methods.join(", ")
        };
        row
    }

    fn new(u: &User, me: i64) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            role: u.role,
            status: u.status,
            deleted: u.deleted_at.is_some(),
            created: format_time(u.created_at),
            last_login: u
                .last_login_at
                .map_or_else(|| "never".to_owned(), format_time),
            methods: if u.password_hash.is_some() {
                "password".into()
            } else {
                "none".into()
            },
            is_self: u.id == me,
            error: None,
        }
    }
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

fn with_vary(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("HX-Request"));
    r
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    layout: Layout,
    params: ListParams,
    users: Vec<RowView>,
    next_url: Option<String>,
    csrf_token: String,
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "admin/users.html", block = "table")]
struct UsersTable {
    users: Vec<RowView>,
    next_url: Option<String>,
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "admin/row_fragment.html")]
struct RowFragment {
    u: RowView,
    csrf_token: String,
}

#[derive(Deserialize, Default)]
pub struct TableQuery {
    #[serde(flatten)]
    params: ListParams,
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("User created."),
        "saved" => Some("Changes saved."),
        "password_reset" => Some("Password reset. The user was signed out everywhere."),
        "purged" => Some("User purged."),
        "done" => Some("Done."),
        _ => None,
    }
}

pub async fn table(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Result<Response, UiError> {
    let params = q.params;
    let query = params.to_query().map_err(UiError::BadRequest)?;
    let sort = query.sort;
    let (rows, keys, sso) = state
        .db
        .run(move |c| {
            let rows = crate::db::users::list(c, &query)?;
            let ids: Vec<i64> = rows.iter().map(|u| u.id).collect();
            let keys = crate::db::users::api_key_counts(c, &ids)?;
            let sso = crate::db::identities::providers_of(c, &ids)?;
            Ok::<_, crate::db::DbError>((rows, keys, sso))
        })
        .await
        .map_err(UiError::internal)?;
    let next_url = next_cursor(&rows, sort, params.limit()).map(|cursor| {
        let mut p = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &params.q),
            ("role", &params.role),
            ("status", &params.status),
            ("sort", &params.sort),
            ("dir", &params.dir),
        ] {
            if !v.is_empty() {
                p.append_pair(k, v);
            }
        }
        p.append_pair("after", &cursor);
        format!("/admin/users?{}", p.finish())
    });
    let users: Vec<RowView> = rows
        .iter()
        .take(params.limit())
        .map(|u| {
            RowView::with_keys(
                u,
                me.user.id,
                keys.get(&u.id).copied().unwrap_or(0),
                sso.get(&u.id).map_or(&[][..], Vec::as_slice),
            )
        })
        .collect();
    let csrf_token = crate::web::session::csrf_token(&session).await?;
    if is_htmx(&headers) && headers.get("hx-target").is_some_and(|v| v == "user-table") {
        let html = UsersTable {
            users,
            next_url,
            csrf_token,
        }
        .render()
        .map_err(UiError::internal)?;
        return Ok(with_vary(Html(html).into_response()));
    }
    let page = UsersPage {
        layout: Layout::new("Users", &state, &session, Some(&me)).await?,
        params,
        users,
        next_url,
        csrf_token,
        notice: notice(q.notice.as_deref()),
    };
    Ok(with_vary(page.into_response()))
}

/// `POST /admin/users/{id}/{action}` for the buttons of a row.
pub async fn row_action(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, UiError> {
    let change = match action.as_str() {
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "approve" => Change::Approve,
        "reject" => Change::Reject,
        "delete" => Change::Delete,
        "restore" => Change::Restore,
        _ => return Err(UiError::NotFound),
    };
    let result = admin::apply(&state.db, &state.hasher, me.actor(&client), id, change).await;
    if !is_htmx(&headers) {
        return match result {
            Ok(_) => Ok(Redirect::to("/admin/users?notice=done").into_response()),
            Err(e) => Err(e.into()),
        };
    }
    let csrf_token = crate::web::session::csrf_token(&session).await?;
    let row = match result {
        Ok(Some(u)) => RowView::new(&u, me.user.id),
        Ok(None) => return Ok(Html(String::new()).into_response()),
        Err(ServiceError::Refused(Refusal::Policy(p))) => {
            let current = state
                .db
                .run(move |c| crate::db::users::find_by_id(c, id))
                .await
                .map_err(UiError::internal)?
                .ok_or(UiError::NotFound)?;
            let mut row = RowView::new(&current, me.user.id);
            row.error = Some(p.to_string());
            row
        }
        Err(e) => return Err(e.into()),
    };
    let html = RowFragment { u: row, csrf_token }
        .render()
        .map_err(UiError::internal)?;
    Ok(with_vary(Html(html).into_response()))
}

/// The inline edit form that htmx swaps in place of a row.
#[derive(Template)]
#[template(path = "admin/user_edit_row.html")]
struct EditRow {
    id: i64,
    form: UserForm,
    errors: FieldErrors,
    csrf_token: String,
}

async fn edit_row(
    session: &Session,
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
    }
    .render()
    .map_err(UiError::internal)?;
    // 200 even with errors: htmx swaps only successful responses by default.
    Ok(with_vary(Html(html).into_response()))
}

async fn row(state: &AppState, session: &Session, me: i64, id: i64) -> Result<Response, UiError> {
    let u = load(state, id).await?;
    let csrf_token = crate::web::session::csrf_token(session).await?;
    let html = RowFragment {
        u: RowView::new(&u, me),
        csrf_token,
    }
    .render()
    .map_err(UiError::internal)?;
    Ok(with_vary(Html(html).into_response()))
}

/// `GET /admin/users/{id}/row`: one row (htmx "Cancel" of an inline edit).
pub async fn row_fragment(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    row(&state, &session, me.user.id, id).await
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    layout: Layout,
    id: i64,
    action: String,
    question: String,
    button: &'static str,
}

/// The confirmation step of destructive actions when JavaScript is off.
pub async fn confirm(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path((id, action)): Path<(i64, String)>,
) -> Result<ConfirmPage, UiError> {
    let target = load(&state, id).await?;
    let (title, question, button) = match action.as_str() {
        "disable" => (
            "Disable user",
            format!(
                "Disable {}? Their sessions and API keys stop working at once. You can enable the account again later.",
                target.username
            ),
            "Disable",
        ),
        "reject" => (
            "Reject user",
            format!(
                "Reject {}? They will see \"Access not approved\" when they sign in.",
                target.username
            ),
            "Reject",
        ),
        "delete" => (
            "Delete user",
            format!(
                "Delete {}? The account is disabled and hidden from the table; its history is kept and it can be restored.",
                target.username
            ),
            "Delete",
        ),
        _ => return Err(UiError::NotFound),
    };
    Ok(ConfirmPage {
        layout: Layout::new(title, &state, &session, Some(&me)).await?,
        id,
        action,
        question,
        button,
    })
}

async fn load(state: &AppState, id: i64) -> Result<User, UiError> {
    state
        .db
        .run(move |c| crate::db::users::find_by_id(c, id))
        .await
        .map_err(UiError::internal)?
        .ok_or(UiError::NotFound)
}

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
    let result = match admin::parse_new_user(
        &form.username,
        &form.email,
        &form.display_name,
        &form.role,
        password,
    ) {
        Ok((profile, password)) => {
            admin::create_user(
                &state.db,
                &state.hasher,
                me.actor(&client),
                profile,
                password,
            )
            .await
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

async fn form_error(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    mut form: UserForm,
    errors: FieldErrors,
    id: Option<i64>,
) -> Result<Response, UiError> {
    form.password = String::new();
    let page = UserFormPage {
        layout: Layout::new(
            if id.is_some() {
                "Edit user"
            } else {
                "New user"
            },
            state,
            session,
            Some(me),
        )
        .await?,
        action: id.map_or_else(
            || "/admin/users".to_owned(),
            |i| format!("/admin/users/{i}"),
        ),
        creating: id.is_none(),
        user_id: id,
        form,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
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

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let form = UserForm::of(load(&state, id).await?);
    if is_htmx(&headers) {
        return edit_row(&session, id, form, FieldErrors::new()).await;
    }
    let page = UserFormPage {
        layout: Layout::new("Edit user", &state, &session, Some(&me)).await?,
        action: format!("/admin/users/{id}"),
        creating: false,
        user_id: Some(id),
        form,
        errors: FieldErrors::new(),
    };
    Ok(with_vary(page.into_response()))
}

pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<UserForm>,
) -> Result<Response, UiError> {
    let result = match Profile::parse(&form.username, &form.email, &form.display_name, &form.role) {
        Ok(p) => {
            admin::apply(
                &state.db,
                &state.hasher,
                me.actor(&client),
                id,
                Change::Edit(p),
            )
            .await
        }
        Err(e) => Err(ServiceError::Validation(e)),
    };
    let errors = match result {
        Ok(_) if is_htmx(&headers) => return row(&state, &session, me.user.id, id).await,
        Ok(_) => return Ok(Redirect::to("/admin/users?notice=saved").into_response()),
        Err(ServiceError::Validation(errors)) => errors,
        Err(ServiceError::Refused(Refusal::Policy(p))) => {
            FieldErrors::single("form", p.to_string())
        }
        Err(e) => return Err(e.into()),
    };
    if is_htmx(&headers) {
        edit_row(&session, id, form, errors).await
    } else {
        form_error(&state, &session, &me, form, errors, Some(id)).await
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ResetForm>,
) -> Result<Response, UiError> {
    let result = match Password::parse_confirmed(&form.new_password, &form.new_password_confirm) {
        Ok(p) => {
            admin::apply(
                &state.db,
                &state.hasher,
                me.actor(&client),
                id,
                Change::ResetPassword(p),
            )
            .await
        }
        Err((field, m)) => Err(ServiceError::Validation(FieldErrors::single(
            if field == "password" {
                "new_password"
            } else {
                "new_password_confirm"
            },
            m,
        ))),
    };
    match result {
        Ok(_) if is_htmx(&headers) => row(&state, &session, me.user.id, id).await,
        Ok(_) => Ok(Redirect::to("/admin/users?notice=password_reset").into_response()),
        Err(ServiceError::Validation(errors)) => {
            let form = UserForm::of(load(&state, id).await?);
            if is_htmx(&headers) {
                edit_row(&session, id, form, errors).await
            } else {
                form_error(&state, &session, &me, form, errors, Some(id)).await
            }
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/purge.html")]
pub struct PurgePage {
    layout: Layout,
    id: i64,
    username: String,
    error: Option<String>,
}

pub async fn purge_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<PurgePage, UiError> {
    let u = load(&state, id).await?;
    Ok(PurgePage {
        layout: Layout::new("Purge user", &state, &session, Some(&me)).await?,
        id,
        username: u.username,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct PurgeForm {
    #[serde(default)]
    confirm: String,
}

pub async fn purge(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
    Form(form): Form<PurgeForm>,
) -> Result<Response, UiError> {
    let result = admin::apply(
        &state.db,
        &state.hasher,
        me.actor(&client),
        id,
        Change::Purge {
            confirm: form.confirm,
        },
    )
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/admin/users?notice=purged").into_response()),
        Err(ServiceError::Refused(Refusal::Policy(p))) => {
            let u = load(&state, id).await?;
            let page = PurgePage {
                layout: Layout::new("Purge user", &state, &session, Some(&me)).await?,
                id,
                username: u.username,
                error: Some(p.to_string()),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
