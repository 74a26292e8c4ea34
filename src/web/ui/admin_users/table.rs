//! `GET /admin/users`: the user table, as a page or (for the filters and "next page") as
//! the table fragment htmx swaps.

use crate::web::surface::Surface;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::row::Message;
use super::rows::TableRows;
use crate::service::stamped::Taken;
use crate::service::users;
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::read_stamp::ReadStamp;
use crate::web::ui::{CsrfToken, Layout};
use crate::web::user_list::ListParams;

#[derive(Template)]
#[template(path = "admin/users.html", whitespace = "minimize")]
pub struct UsersPage {
    layout: Layout,
    params: ListParams,
    rows: TableRows,
    next_url: Option<String>,
    /// What the last action did or why it was refused (the page's message area).
    message: Option<Message>,
    /// The group filter's choices, as (id, name).
    groups: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "admin/users.html", block = "table", whitespace = "minimize")]
struct UsersTable {
    rows: TableRows,
    next_url: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TableQuery {
    #[serde(flatten)]
    params: ListParams,
    notice: Option<String>,
}

/// The banner after a form action redirected back to the table.
pub(super) fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("User created."),
        "saved" => Some("Changes saved."),
        "password_reset" => Some("Password reset. The user was signed out everywhere."),
        "purged" => Some("User purged."),
        "groups_saved" => Some("Groups saved. They take effect on the user's next request."),
        "done" => Some("Done."),
        "approved" => Some("Account approved: it can use Hallpass now."),
        "rejected" => Some("Account rejected."),
        "disabled" => Some("Account disabled: its sessions and API keys stopped working."),
        "enabled" => Some("Account enabled."),
        "deleted" => Some("Account deleted. Filter by the status \"deleted\" to restore it."),
        "restored" => Some("Account restored."),
        "two_factor_reset" => Some("Two-factor sign-in reset. The user was signed out everywhere."),
        _ => None,
    }
}

/// The link to the next page: the same filters, continuing after `cursor`.
fn next_url(params: &ListParams, cursor: &str) -> String {
    let next = ListParams {
        after: cursor.to_owned(),
        ..params.clone()
    };
    next.table_url("")
}

pub async fn table(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    surface: Surface,
    ReadStamp(at): ReadStamp,
    headers: HeaderMap,
    Query(q): Query<TableQuery>,
) -> Result<Response, UiError> {
    let message = notice(q.notice.as_deref()).map(Message::success);
    let view = View {
        params: q.params,
        message,
        refused: None,
    };
    let gzip = crate::web::static_files::gzip_acceptable(&headers);
    if surface.targets("user-table") {
        let (rows, next_url) = rows(&state, &session, &me, &view.params, at, gzip).await?;
        return answer(UsersTable { rows, next_url }, |t| (&mut t.rows, None));
    }
    let page = page_view(&state, &session, &me, view, at, gzip).await?;
    answer(page, |p| (&mut p.rows, Some(&mut p.layout.csrf_token)))
}

/// What the page shows besides the rows of `params`.
pub(super) struct View {
    pub params: ListParams,
    pub message: Option<Message>,
    /// A row whose action was refused, and why (shown by its actions).
    pub refused: Option<(i64, String)>,
}

/// The rows of `params` for `me` (read under `at`), their forms carrying the request's CSRF
/// token and this view of the table (`back`), ready for a `gzip` answer if asked, and the
/// link to the next page.
async fn rows(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    params: &ListParams,
    at: Taken,
    gzip: bool,
) -> Result<(TableRows, Option<String>), UiError> {
    let query = params.to_query().map_err(UiError::BadRequest)?;
    let detail = users::Detail::SignInMethods;
    let page = users::list_at(&state.db, &state.user_pages, at, query, detail).await?;
    let next_url = page.next.as_deref().map(|c| next_url(params, c));
    let csrf_token = crate::web::session::csrf_token(session).await?;
    let back = params.query_string();
    let rows = TableRows::page(&page, me.user.id, &csrf_token, &back, gzip);
    Ok((rows, next_url))
}

/// The page or the table fragment as the answer: gzip from the kept pieces when the rows are
/// ready for it (`TableRows::gzip`), else the HTML (compressed by the router's layer if asked).
/// `parts` gives the template's rows and its layout's token, if it has a layout.
fn answer<T: Template>(
    mut template: T,
    parts: impl FnOnce(&mut T) -> (&mut TableRows, Option<&mut CsrfToken>),
) -> Result<Response, UiError> {
    let (rows, layout_token) = parts(&mut template);
    let size = rendered_size(rows.len());
    let gzip = rows.gzip();
    // In a gzip answer the layout's token is stored between pieces too: a gap here.
    let layout_token = match (&gzip, layout_token) {
        (Some(_), Some(token)) => std::mem::replace(token, CsrfToken::gap()),
        _ => CsrfToken::new(String::new()),
    };
    let mut html = String::with_capacity(size);
    template.render_into(&mut html).map_err(UiError::internal)?;
    match gzip {
        None => Ok(Html(html).into_response()),
        Some(gzip) => gzip
            .response(&html, layout_token.text())
            .ok_or_else(|| UiError::internal("the user table could not be compressed")),
    }
}

/// The whole page (also what a refused row action shows without JavaScript), its rows, group
/// filter and pending badge read under one stamp `at` (one fence, not three), taken after
/// anything the request wrote.
pub(super) async fn page(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    view: View,
    at: Taken,
) -> Result<String, UiError> {
    let page = page_view(state, session, me, view, at, false).await?;
    let mut html = String::with_capacity(rendered_size(page.rows.len()));
    page.render_into(&mut html).map_err(UiError::internal)?;
    Ok(html)
}

/// [`page`], to be rendered (ready for a `gzip` answer if asked).
async fn page_view(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    view: View,
    at: Taken,
    gzip: bool,
) -> Result<UsersPage, UiError> {
    let (mut rows, next_url) = self::rows(state, session, me, &view.params, at, gzip).await?;
    if let Some((id, why)) = view.refused {
        rows.refuse(id, &why);
    }
    let groups = crate::service::groups::list_kept(&state.db, &state.group_list, at).await?;
    Ok(UsersPage {
        groups: groups
            .iter()
            .map(|g| (g.id.to_string(), g.name.clone()))
            .collect(),
        layout: Layout::new_at("Users", state, session, Some(me), Some(at)).await?,
        params: view.params,
        rows,
        next_url,
        message: view.message,
    })
}

/// Room for the page at once: askama starts from the size of the template's text, and a
/// page of 50 rows then grew its buffer a dozen times, copying it each time.
fn rendered_size(rows: usize) -> usize {
    8 * 1024 + rows * 2 * 1024
}
