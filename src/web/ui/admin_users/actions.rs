//! The buttons of a row (disable, enable, approve, reject, delete, restore, purge) and the
//! confirmation pages that stand in for `hx-confirm` when JavaScript is off.

use crate::web::surface::Surface;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::load;
use super::row::{self, RowView};
use crate::service::admin::{self, Change};
use crate::service::{Refusal, ServiceError};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::ui::Layout;

/// The change a row button asks for (`None`: no such button).
fn row_change(action: &str) -> Option<Change> {
    Some(match action {
        "disable" => Change::Disable,
        "enable" => Change::Enable,
        "approve" => Change::Approve,
        "reject" => Change::Reject,
        "delete" => Change::Delete,
        "restore" => Change::Restore,
        _ => return None,
    })
}

/// `POST /admin/users/{id}/{action}` for the buttons of a row. With htmx the row comes
/// back (with the refusal beside the name when a rule said no); without, the table.
pub async fn row_action(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, UiError> {
    let change = row_change(&action).ok_or(UiError::NotFound)?;
    let result = admin::apply(&state.db, &state.hasher, me.actor(&client), id, change).await;
    if !surface.is_fragment() {
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
            let mut row = RowView::new(&load(&state, id).await?, me.user.id);
            row.error = Some(p.to_string());
            row
        }
        Err(e) => return Err(e.into()),
    };
    row::fragment(row, csrf_token)
}

#[derive(askama::Template, WebTemplate)]
#[template(path = "admin/confirm.html")]
pub struct ConfirmPage {
    layout: Layout,
    id: i64,
    action: String,
    question: String,
    button: &'static str,
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
) -> Result<ConfirmPage, UiError> {
    let target = load(&state, id).await?;
    let (title, question, button) =
        confirmation(&action, &target.username).ok_or(UiError::NotFound)?;
    Ok(ConfirmPage {
        layout: Layout::new(title, &state, &session, Some(&me)).await?,
        id,
        action,
        question,
        button,
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
