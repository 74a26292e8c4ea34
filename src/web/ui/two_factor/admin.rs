//! `/admin/users/{id}/two-factor`: an admin sees whether someone has a second factor and
//! resets it (audited; their sessions end) when they lost their app and recovery codes.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::Redirect;
use tower_sessions::Session;

use crate::service::two_factor;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/admin.html")]
pub struct AdminPage {
    layout: Layout,
    id: i64,
    username: String,
    enrolled: bool,
    required: bool,
}

/// `GET /admin/users/{id}/two-factor`.
pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<AdminPage, UiError> {
    let user = crate::service::users::get(&state.db, id)
        .await?
        .ok_or(UiError::NotFound)?;
    let status = two_factor::status(&state.db, &user).await?;
    Ok(AdminPage {
        layout: Layout::new("Two-factor sign-in", &state, &session, Some(&me)).await?,
        id,
        username: user.username,
        enrolled: status.enrolled,
        required: status.required,
    })
}

/// `POST /admin/users/{id}/two-factor/reset`.
pub async fn reset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Redirect, UiError> {
    two_factor::reset(&state.db, me.actor(&client), id).await?;
    Ok(Redirect::to("/admin/users?notice=two_factor_reset"))
}
