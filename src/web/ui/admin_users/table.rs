//! `GET /admin/users`: the user table, as a page or (for the filters and "next page") as
//! the table fragment htmx swaps.

use crate::web::surface::Surface;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::row::{Message, RowView};
use crate::service::stamped::Taken;
use crate::service::users;
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::{Escaped, Layout};
use crate::web::user_list::ListParams;

#[derive(Template)]
#[template(path = "admin/users.html", whitespace = "minimize")]
pub struct UsersPage {
    layout: Layout,
    params: ListParams,
    users: Vec<RowView>,
    next_url: Option<String>,
    // Escaped once a page, like `back`: the rows' forms write both.
    csrf_token: Escaped,
    /// What the last action did or why it was refused (the page's message area).
    message: Option<Message>,
    /// The group filter's choices, as (id, name).
    groups: Vec<(String, String)>,
    /// This view of the table (`q=…&sort=…`), which row actions carry to come back to it.
    back: Escaped,
    /// `back` encoded for links (`row::back_url`).
    back_url: String,
}

#[derive(Template)]
#[template(path = "admin/users.html", block = "table", whitespace = "minimize")]
struct UsersTable {
    users: Vec<RowView>,
    next_url: Option<String>,
    csrf_token: Escaped,
    back: Escaped,
    back_url: String,
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
    Query(q): Query<TableQuery>,
) -> Result<Response, UiError> {
    let message = notice(q.notice.as_deref()).map(Message::success);
    let view = View {
        params: q.params,
        message,
        refused: None,
    };
    if surface.targets("user-table") {
        return fragment(&state, &session, &me, view.params).await;
    }
    Ok(Html(page(&state, &session, &me, view).await?).into_response())
}

/// What the page shows besides the rows of `params`.
pub(super) struct View {
    pub params: ListParams,
    pub message: Option<Message>,
    /// A row whose action was refused, and why (shown by its actions).
    pub refused: Option<(i64, String)>,
}

/// The rows of `params` for `me` (read under `at`), the link to the next page, and the CSRF
/// token.
async fn rows(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    params: &ListParams,
    at: Taken,
) -> Result<(Vec<RowView>, Option<String>, String), UiError> {
    let query = params.to_query().map_err(UiError::BadRequest)?;
    let detail = users::Detail::SignInMethods;
    let page = users::list_at(&state.db, &state.user_pages, at, query, detail).await?;
    let next_url = page.next.as_deref().map(|c| next_url(params, c));
    let users = RowView::page(&page, me.user.id);
    let csrf_token = crate::web::session::csrf_token(session).await?;
    Ok((users, next_url, csrf_token))
}

/// The table alone, for htmx (filters, next page).
async fn fragment(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    params: ListParams,
) -> Result<Response, UiError> {
    let at = Taken::now(&state.db).await;
    let (users, next_url, csrf_token) = rows(state, session, me, &params, at).await?;
    let mut html = String::with_capacity(rendered_size(users.len()));
    let back = params.query_string();
    let table = UsersTable {
        users,
        next_url,
        csrf_token: Escaped::text(&csrf_token),
        back_url: super::row::back_url(&back),
        back: Escaped::text(&back),
    };
    table.render_into(&mut html).map_err(UiError::internal)?;
    Ok(Html(html).into_response())
}

/// The whole page (also what a refused row action shows without JavaScript).
pub(super) async fn page(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    view: View,
) -> Result<String, UiError> {
    // One stamp for the rows, the group filter and the pending badge (one fence, not three).
    let at = Taken::now(&state.db).await;
    let (mut users, next_url, csrf_token) = rows(state, session, me, &view.params, at).await?;
    if let Some((id, why)) = view.refused {
        for u in users.iter_mut().filter(|u| u.id == id) {
            u.error = Some(why.clone());
        }
    }
    let groups = crate::service::groups::list_kept(&state.db, &state.group_list, at).await?;
    let mut html = String::with_capacity(rendered_size(users.len()));
    let back = view.params.query_string();
    let page = UsersPage {
        groups: groups
            .iter()
            .map(|g| (g.id.to_string(), g.name.clone()))
            .collect(),
        layout: Layout::new_at("Users", state, session, Some(me), Some(at)).await?,
        back_url: super::row::back_url(&back),
        back: Escaped::text(&back),
        params: view.params,
        users,
        next_url,
        csrf_token: Escaped::text(&csrf_token),
        message: view.message,
    };
    page.render_into(&mut html).map_err(UiError::internal)?;
    Ok(html)
}

/// Room for the page at once: askama starts from the size of the template's text, and a
/// page of 50 rows then grew its buffer a dozen times, copying it each time.
fn rendered_size(rows: usize) -> usize {
    8 * 1024 + rows * 2 * 1024
}
