//! "Your sessions" (`/account/sessions`) and an admin's view of anyone's
//! (`/admin/users/{id}/sessions`): one template, the same service calls
//! (`service::session_control`), plain forms that work without JavaScript.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, format_time};
use crate::service::session_control::{self, SessionInfo};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;

/// One row of the table.
pub struct SessionRowView {
    id: String,
    device: String,
    user_agent: String,
    ip: String,
    signed_in: String,
    last_seen: String,
    current: bool,
}

impl From<SessionInfo> for SessionRowView {
    fn from(s: SessionInfo) -> Self {
        Self {
            device: s.device,
            user_agent: s.user_agent.unwrap_or_default(),
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            signed_in: format_time(s.signed_in_at),
            last_seen: s
                .last_seen_at
                .map_or_else(|| "unknown".to_owned(), format_time),
            current: s.current,
            id: s.id,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    layout: Layout,
    /// Whose sessions: `None` for the caller's own page.
    of_user: Option<(i64, String)>,
    /// Where the forms post: `/account/sessions` or `/admin/users/{id}/sessions`.
    base: String,
    sessions: Vec<SessionRowView>,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// Messages after a redirect, by code (never free text from the URL).
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "ended" => Some("The session was ended. Its next request finds it signed out."),
        "others" => Some("Every other session was ended."),
        "all" => Some("Every session of this account was ended."),
        _ => None,
    }
}

/// The caller's own session, as the list marks it.
fn current(session: &Session) -> Option<String> {
    session.id().map(|id| session_control::current_key(&id))
}

pub async fn mine(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<SessionsPage, UiError> {
    let sessions = session_control::list(&state.db, me.user.id, current(&session)).await?;
    Ok(SessionsPage {
        layout: Layout::new("Your sessions", &state, &session, Some(&me)).await?,
        of_user: None,
        base: "/account/sessions".into(),
        sessions: sessions.into_iter().map(SessionRowView::from).collect(),
        notice: notice(q.notice.as_deref()),
    })
}

pub async fn end_mine(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    session_control::end(&state.db, me.actor(&client), me.user.id, id).await?;
    Ok(Redirect::to("/account/sessions?notice=ended").into_response())
}

pub async fn end_my_others(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    session: Session,
) -> Result<Response, UiError> {
    let keep = current(&session);
    session_control::end_others(&state.db, me.actor(&client), me.user.id, keep).await?;
    Ok(Redirect::to("/account/sessions?notice=others").into_response())
}

pub async fn of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    session: Session,
    Path(user_id): Path<i64>,
    Query(q): Query<NoticeQuery>,
) -> Result<SessionsPage, UiError> {
    let username = session_control::account_name(&state.db, user_id).await?;
    let sessions = session_control::list(&state.db, user_id, current(&session)).await?;
    Ok(SessionsPage {
        layout: Layout::new(
            format!("Sessions of {username}"),
            &state,
            &session,
            Some(&admin),
        )
        .await?,
        of_user: Some((user_id, username)),
        base: format!("/admin/users/{user_id}/sessions"),
        sessions: sessions.into_iter().map(SessionRowView::from).collect(),
        notice: notice(q.notice.as_deref()),
    })
}

pub async fn end_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    Path((user_id, id)): Path<(i64, String)>,
) -> Result<Response, UiError> {
    session_control::end(&state.db, admin.actor(&client), user_id, id).await?;
    let to = format!("/admin/users/{user_id}/sessions?notice=ended");
    Ok(Redirect::to(&to).into_response())
}

/// Ends every session of the account (the admin's own current one stays, if it is theirs).
pub async fn end_all_of_user(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    session: Session,
    Path(user_id): Path<i64>,
) -> Result<Response, UiError> {
    let keep = (user_id == admin.user.id)
        .then(|| current(&session))
        .flatten();
    session_control::end_others(&state.db, admin.actor(&client), user_id, keep).await?;
    let to = format!("/admin/users/{user_id}/sessions?notice=all");
    Ok(Redirect::to(&to).into_response())
}
