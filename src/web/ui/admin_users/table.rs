//! `GET /admin/users`: the user table, as a page or (for the filters and "next page") as
//! the table fragment htmx swaps.

use crate::web::surface::Surface;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::row::RowView;
use crate::service::users;
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::ui::Layout;
use crate::web::user_list::ListParams;

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    layout: Layout,
    params: ListParams,
    users: Vec<RowView>,
    next_url: Option<String>,
    csrf_token: String,
    notice: Option<&'static str>,
    /// The group filter's choices, as (id, name).
    groups: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/users.html", block = "table")]
struct UsersTable {
    users: Vec<RowView>,
    next_url: Option<String>,
    csrf_token: String,
}

#[derive(Deserialize, Default)]
pub struct TableQuery {
    #[serde(flatten)]
    params: ListParams,
    notice: Option<String>,
}

/// The banner after a form action redirected back to the table.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("User created."),
        "saved" => Some("Changes saved."),
        "password_reset" => Some("Password reset. The user was signed out everywhere."),
        "purged" => Some("User purged."),
        "groups_saved" => Some("Groups saved. They take effect on the user's next request."),
        "done" => Some("Done."),
        _ => None,
    }
}

/// The link to the next page: the same filters, continuing after `cursor`.
fn next_url(params: &ListParams, cursor: &str) -> String {
    let mut p = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &params.q),
        ("role", &params.role),
        ("status", &params.status),
        ("group", &params.group),
        ("sort", &params.sort),
        ("dir", &params.dir),
    ] {
        if !v.is_empty() {
            p.append_pair(k, v);
        }
    }
    p.append_pair("after", cursor);
    format!("/admin/users?{}", p.finish())
}

pub async fn table(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    surface: Surface,
    Query(q): Query<TableQuery>,
) -> Result<Response, UiError> {
    let params = q.params;
    let query = params.to_query().map_err(UiError::BadRequest)?;
    let page = users::list(&state.db, query, users::Detail::SignInMethods).await?;
    let next_url = page.next.as_deref().map(|c| next_url(&params, c));
    let users: Vec<RowView> = page
        .users
        .iter()
        .map(|u| RowView::listed(u, me.user.id))
        .collect();
    let csrf_token = crate::web::session::csrf_token(&session).await?;
    let mut html = String::with_capacity(rendered_size(users.len()));
    if surface.targets("user-table") {
        let table = UsersTable {
            users,
            next_url,
            csrf_token,
        };
        table.render_into(&mut html).map_err(UiError::internal)?;
        return Ok(Html(html).into_response());
    }
    let groups = crate::service::groups::list_kept(&state.db, &state.group_list).await?;
    let page = UsersPage {
        groups: groups
            .iter()
            .map(|g| (g.id.to_string(), g.name.clone()))
            .collect(),
        layout: Layout::new("Users", &state, &session, Some(&me)).await?,
        params,
        users,
        next_url,
        csrf_token,
        notice: notice(q.notice.as_deref()),
    };
    page.render_into(&mut html).map_err(UiError::internal)?;
    Ok(Html(html).into_response())
}

/// Room for the page at once: askama starts from the size of the template's text, and a
/// page of 50 rows then grew its buffer a dozen times, copying it each time.
fn rendered_size(rows: usize) -> usize {
    8 * 1024 + rows * 2 * 1024
}
