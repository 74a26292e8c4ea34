//! The buttons of a row (disable, enable, approve, reject, delete, restore, purge) and the
//! confirmation pages that stand in for `hx-confirm` when JavaScript is off.

use crate::web::surface::Surface;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::row::{self, Back, Extras, Message, RowView};
use super::table::{self, View, notice};
use super::{load, load_row};
use crate::service::admin::{self, Change};
use crate::service::users;
use crate::service::{Refusal, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;
use crate::web::user_list::ListParams;
use axum::body::Bytes;

/// The change a row button asks for, and the notice once done (`None`: no such button).
fn row_change(action: &str) -> Option<(Change, &'static str)> {
    Some(match action {
        "disable" => (Change::Disable, "disabled"),
        "enable" => (Change::Enable, "enabled"),
        "approve" => (Change::Approve, "approved"),
        "reject" => (Change::Reject, "rejected"),
        "delete" => (Change::Delete, "deleted"),
        "restore" => (Change::Restore, "restored"),
        _ => return None,
    })
}

/// The view of the table a row's form came from (its `back` field), so that the answer
/// shows the same search, filters, order and page. An htmx link sends no body: no view.
fn back_of(body: &[u8]) -> ListParams {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "back")
        .map(|(_, v)| ListParams::from_query_string(&v))
        .unwrap_or_default()
}

/// `POST /admin/users/{id}/{action}` for the buttons of a row. With htmx the row comes
/// back, with the outcome in the page's message area and the refusal (when a rule said no)
/// beside the row's actions too; without, the same view of the table.
pub async fn row_action(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path((id, action)): Path<(i64, String)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let (change, done) = row_change(&action).ok_or(UiError::NotFound)?;
    let back = back_of(&body);
    let result = admin::apply(&state.db, &state.hasher, me.actor(&client), id, change).await;
    let refused = match result {
        Err(ServiceError::Refused(Refusal::Policy(p))) => p.to_string(),
        Err(e) => return Err(e.into()),
        Ok(_) if !surface.is_fragment() => {
            let to = back.table_url(&format!("notice={done}"));
            return Ok(Redirect::to(&to).into_response());
        }
        Ok(None) => return Ok(Html(String::new()).into_response()),
        Ok(Some(u)) => {
            let row = RowView::listed(&users::listed_from(&state.db, u).await?, me.user.id);
            let extras = Extras {
                back: back.query_string(),
                message: notice(Some(done)).map(Message::success),
                pending: Some(users::pending_count(&state.db, &state.pending_badge).await?),
            };
            let csrf_token = crate::web::session::csrf_token(&session).await?;
            return row::fragment(row, csrf_token, extras);
        }
    };
    refusal(&state, &session, &me, &surface, (id, refused), back).await
}

/// A refused row action: by the row's actions and in the message area, as the row (htmx)
/// or as the page it was asked from (409).
async fn refusal(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    surface: &Surface,
    (id, why): (i64, String),
    back: ListParams,
) -> Result<Response, UiError> {
    if surface.is_fragment() {
        let mut row = load_row(state, id, me.user.id).await?;
        row.error = Some(why.clone());
        let extras = Extras {
            back: back.query_string(),
            message: Some(Message::error(why)),
            pending: None,
        };
        let csrf_token = crate::web::session::csrf_token(session).await?;
        return row::fragment(row, csrf_token, extras);
    }
    let view = View {
        params: back,
        message: Some(Message::error(why.clone())),
        refused: Some((id, why)),
    };
    // After the refused action: anything it wrote is read back.
    let at = crate::service::stamped::Taken::now(&state.db).await;
    let html = table::page(state, session, me, view, at).await?;
    Ok((StatusCode::CONFLICT, Html(html)).into_response())
}

#[derive(askama::Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    layout: Layout,
    id: i64,
    action: String,
    question: String,
    button: &'static str,
    /// The view of the table the action was asked from (sent back with the form).
    back: String,
    /// That view's address (Cancel).
    cancel: String,
}

/// Title, question and button of the confirmation of `action` on `username`.
fn confirmation(action: &str, username: &str) -> Option<(&'static str, String, &'static str)> {
    Some(match action {
        "disable" => (
            "Disable user",
            format!(
                "Disable {username}? Their sessions and API keys stop working at once. You can enable the account again later."
            ),
            "Disable",
        ),
        "reject" => (
            "Reject user",
            format!("Reject {username}? They will see \"Access not approved\" when they sign in."),
            "Reject",
        ),
        "delete" => (
            "Delete user",
            format!(
                "Delete {username}? The account is disabled and hidden from the table; its history is kept and it can be restored."
            ),
            "Delete",
        ),
        _ => return None,
    })
}

/// The confirmation step of destructive actions when JavaScript is off.
pub async fn confirm(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path((id, action)): Path<(i64, String)>,
    Query(back): Query<Back>,
) -> Result<ConfirmPage, UiError> {
    let target = load(&state, id).await?;
    let back = ListParams::from_query_string(&back.back);
    let (title, question, button) =
        confirmation(&action, &target.username).ok_or(UiError::NotFound)?;
    Ok(ConfirmPage {
        layout: Layout::new(title, &state, &session, Some(&me)).await?,
        id,
        action,
        question,
        button,
        back: back.query_string(),
        cancel: back.table_url(""),
    })
}

#[derive(askama::Template, WebTemplate)]
#[template(path = "admin/purge.html")]
pub struct PurgePage {
    layout: Layout,
    id: i64,
    username: String,
    error: Option<String>,
}

impl PurgePage {
    async fn new(
        state: &AppState,
        session: &Session,
        me: &crate::web::identity::CurrentUser,
        id: i64,
        error: Option<String>,
    ) -> Result<Self, UiError> {
        let u = load(state, id).await?;
        Ok(PurgePage {
            layout: Layout::new("Purge user", state, session, Some(me)).await?,
            id,
            username: u.username,
            error,
        })
    }
}

pub async fn purge_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<PurgePage, UiError> {
    PurgePage::new(&state, &session, &me, id, None).await
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
    let change = Change::Purge {
        confirm: form.confirm,
    };
    let result = admin::apply(&state.db, &state.hasher, me.actor(&client), id, change).await;
    match result {
        Ok(_) => Ok(Redirect::to("/admin/users?notice=purged").into_response()),
        Err(ServiceError::Refused(Refusal::Policy(p))) => {
            let page = PurgePage::new(&state, &session, &me, id, Some(p.to_string())).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
