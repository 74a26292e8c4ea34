//! Signing up from an invite with a passkey instead of a password (needs JavaScript: the
//! authenticator is reached through the browser's API). `POST /invite/{token}/passkey/options`
//! checks the fields and the link, then answers the challenge (JSON, for `static/passkeys.js`)
//! and keeps the ceremony in the session, bound to this invite and username;
//! `POST /invite/{token}/passkey` (the invite form, with the authenticator's answer) makes the
//! account with its passkey and signs it in, as the password sign-up does.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::signup::{Typed, again, signed_in_redirect};
use crate::domain::FieldErrors;
use crate::service::passkeys::Purpose;
use crate::service::{ServiceError, invites};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::{ApiError, UiError};
use crate::web::identity::MaybeUser;
use crate::web::session;
use crate::web::ui::passkeys::{keep, options_answer, take};

/// The invite form's fields this way needs (the password fields are not sent).
#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    /// The passkey's name.
    #[serde(default)]
    passkey_name: String,
    /// The authenticator's answer (finishing only).
    #[serde(default)]
    credential: String,
}

impl PasskeyForm {
    fn parse(&self) -> Result<invites::NewAccount, ServiceError> {
        invites::NewAccount::parse_with_name(&self.username, &self.email, &self.passkey_name)
            .map_err(ServiceError::Validation)
    }
}

/// `POST /invite/{token}/passkey/options`: field errors (as JSON, by field) before any
/// authenticator is asked; else the options for `navigator.credentials.create()`.
pub async fn options(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    client: Client,
    Path(token): Path<String>,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, ApiError> {
    if user.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "SIGNED_IN",
            "You are signed in: sign out first to create a new account with this invite.",
        ));
    }
    let new = form.parse()?;
    let deps = (&state.db, &state.config, &state.secret, &state.limiter);
    let (options, ceremony) = invites::start_passkey(deps, &token, &new, client.ip()).await?;
    keep(&session, Purpose::SignUp, ceremony).await?;
    Ok(options_answer(options))
}

/// The fields parsed, then the account made with the answer (none: the script did not run).
async fn sign_up(
    state: &AppState,
    token: &str,
    form: &PasskeyForm,
    ceremony: Option<crate::service::passkeys::Ceremony>,
    ip: std::net::IpAddr,
) -> Result<crate::domain::User, ServiceError> {
    let new = form.parse()?;
    if form.credential.is_empty() {
        return Err(ServiceError::Validation(FieldErrors::single(
            "passkey_name",
            "No passkey came with the form: signing up with a passkey needs JavaScript.",
        )));
    }
    let deps = (&state.db, &state.config, &state.secret, &state.limiter);
    let name = form.passkey_name.as_str();
    let answer = (ceremony, form.credential.as_str());
    invites::accept_with_passkey(deps, token, (new, name), answer, ip).await
}

/// `POST /invite/{token}/passkey`: the account with its passkey, signed in and sent to `/`;
/// else the sign-up page again with the message (or the closed link's page).
pub async fn submit(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    (client, device): (Client, Device),
    Path(token): Path<String>,
    Form(form): Form<PasskeyForm>,
) -> Result<Response, UiError> {
    if user.is_some() {
        return Ok(signed_in_redirect(&token));
    }
    // Taken out whatever happens next: an answer is checked against its ceremony once.
    let ceremony = take(&session, Purpose::SignUp).await?;
    let result = sign_up(&state, &token, &form, ceremony, client.ip()).await;
    match result {
        Ok(user) => {
            tracing::info!(username = %user.username, status = %user.status, "signed up with an invite and a passkey");
            session::sign_in(&session, &user, &state.config, &device).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(e) => {
            let typed = Typed {
                username: form.username,
                email: form.email,
                passkey_name: form.passkey_name,
            };
            again(&state, &session, token, typed, e).await
        }
    }
}
