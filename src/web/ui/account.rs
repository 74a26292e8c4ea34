//! `/account`: your details and your password.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, UserView};
use crate::domain::FieldErrors;
use crate::service::{ServiceError, accounts};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;
use crate::web::session;

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    layout: Layout,
    me: UserView,
    has_password: bool,
    errors: FieldErrors,
}

pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<AccountPage, UiError> {
    Ok(AccountPage {
        layout: Layout::new("Your account", &state, &session, Some(&me)).await?,
        me: UserView::from(&me),
        has_password: me.user.password_hash.is_some(),
        errors: FieldErrors::new(),
    })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response, UiError> {
    let result = accounts::change_own_password(
        &state.db,
        &state.hasher,
        &me.user,
        &form.current_password,
        &form.new_password,
        &form.new_password_confirm,
        Some(client.ip_string()),
    )
    .await;
    match result {
        Ok(()) => {
            // Every session of the user is gone, this one too: say why on the sign-in page.
            session::sign_out(&session).await?;
            Ok(Redirect::to("/login?notice=password_changed").into_response())
        }
        Err(ServiceError::Validation(errors)) => {
            let page = AccountPage {
                layout: Layout::new("Your account", &state, &session, Some(&me)).await?,
                me: UserView::from(&me),
                has_password: me.user.password_hash.is_some(),
                errors,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
