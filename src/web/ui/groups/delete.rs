//! Deleting a group: `GET /admin/groups/{id}/delete` asks first, saying how many members
//! lose it and which apps name it (their rules stop naming it: intended, and said), and
//! `POST` deletes.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::service::groups;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "admin/group_delete.html")]
pub struct ConfirmDelete {
    layout: Layout,
    id: i64,
    name: String,
    members: i64,
    apps: Vec<String>,
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<ConfirmDelete, UiError> {
    let detail = groups::detail(&state.db, id).await?;
    let title = format!("Delete {}", detail.group.name);
    Ok(ConfirmDelete {
        layout: Layout::new(title, &state, &session, Some(&me)).await?,
        id,
        name: detail.group.name,
        members: detail.group.members,
        apps: detail.apps,
    })
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    groups::delete(&state.db, me.actor(&client), id).await?;
    Ok(Redirect::to("/admin/groups?notice=deleted").into_response())
}
