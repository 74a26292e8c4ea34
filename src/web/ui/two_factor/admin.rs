//! `/admin/users/{id}/two-factor`: an admin sees whether someone has second factors (the
//! authenticator app, passkeys) and resets them (audited; their sessions end) when they lost
//! them.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::service::{Refusal, ServiceError, two_factor};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/admin.html")]
pub struct AdminPage {
    layout: Layout,
    id: i64,
    username: String,
    enrolled: bool,
    passkeys: i64,
    required: bool,
    /// Why the reset was refused.
    error: Option<String>,
}

/// `GET /admin/users/{id}/two-factor`.
pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<AdminPage, UiError> {
    AdminPage::of(&state, &session, &me, id, None).await
}

/// `POST /admin/users/{id}/two-factor/reset`. A refusal (the passkeys are the account's
/// only way in) shows the page again with the reason.
pub async fn reset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    match two_factor::reset(&state.db, me.actor(&client), id).await {
        Ok(_) => Ok(Redirect::to("/admin/users?notice=two_factor_reset").into_response()),
        Err(ServiceError::Refused(Refusal::LastSignInMethod(why))) => {
            let page = AdminPage::of(&state, &session, &me, id, Some(why)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

impl AdminPage {
    async fn of(
        state: &AppState,
        session: &Session,
        me: &CurrentUser,
        id: i64,
        error: Option<String>,
    ) -> Result<AdminPage, UiError> {
        let user = crate::service::users::get(&state.db, id)
            .await?
            .ok_or(UiError::NotFound)?;
        let status = two_factor::status(&state.db, &user).await?;
        Ok(AdminPage {
            layout: Layout::new("Two-factor sign-in", state, session, Some(me)).await?,
            id,
            username: user.username,
            enrolled: status.enrolled,
            passkeys: status.passkeys,
            required: status.required,
            error,
        })
    }
}
