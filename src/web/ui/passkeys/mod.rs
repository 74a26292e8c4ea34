//! Passkey pages and the browser's half of each ceremony.
//!
//! The browser script (`static/passkeys.js`) asks an `…/options` route for the challenge
//! (JSON, with the `X-CSRF-Token` header), lets the authenticator answer, puts the answer in
//! a hidden field and submits an ordinary form: success and failure are then plain redirects
//! and re-rendered pages, as everywhere else. The ceremony's state waits in the server-side
//! session, one per purpose, and is taken out (used once) by the form's handler.
//!
//! This file: the ceremony in the session, sign-in with a passkey alone (`/login/passkey`) and
//! the second step with one (`/login/two-factor/passkey`). `account`: `/account/passkeys`.

pub mod account;

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::ServiceError;
use crate::service::passkeys::{self, Ceremony, Purpose};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::{ApiError, UiError};
use crate::web::second_step::{self, Step};

/// The session key of a ceremony for `purpose`.
fn key(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Register => "passkey_register",
        Purpose::SignIn => "passkey_sign_in",
        Purpose::SecondFactor => "passkey_second_factor",
        Purpose::SignUp => "passkey_sign_up",
    }
}

/// Keeps a started ceremony in the session (replacing an earlier one of the same purpose).
pub(super) async fn keep(session: &Session, purpose: Purpose, c: Ceremony) -> Result<(), ApiError> {
    session.insert(key(purpose), c).await.map_err(|e| {
        tracing::error!(error = %e, "session store: keeping a passkey ceremony");
        ApiError::from(ServiceError::Internal("session store"))
    })
}

/// Takes the ceremony of `purpose` out of the session: an answer is checked against it once.
/// None kept (never started, or the session is gone): the service refuses the answer.
pub(super) async fn take(session: &Session, purpose: Purpose) -> Result<Option<Ceremony>, UiError> {
    Ok(session.remove::<Ceremony>(key(purpose)).await?)
}

/// The options as the browser script reads them, never cached.
pub(super) fn options_answer(options: serde_json::Value) -> Response {
    (
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(options),
    )
        .into_response()
}

/// The form the script submits: the authenticator's answer, as JSON text.
#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    credential: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    rd: String,
}

/// `POST /login/passkey/options`: a challenge for a sign-in with a passkey alone.
pub async fn sign_in_options(
    session: Session,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let (options, ceremony) = passkeys::start_sign_in(&state.config)?;
    keep(&session, Purpose::SignIn, ceremony).await?;
    Ok(options_answer(options))
}

/// `POST /login/passkey`: checks the answer and signs in (no second step: the authenticator
/// verified its user, so a passkey is two factors already).
pub async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    headers: HeaderMap,
    Form(form): Form<AnswerForm>,
) -> Result<Response, UiError> {
    if form.credential.is_empty() {
        // No answer: the script did not run (or the form was posted by hand).
        return Ok(Redirect::to("/login").into_response());
    }
    let next = crate::web::identity::safe_next(Some(&form.next));
    let rd = crate::web::return_to::allowed_rd(&state, Some(&form.rd)).await;
    let c = take(&session, Purpose::SignIn).await?;
    let (db, config) = (&state.db, &state.config);
    let result = passkeys::finish_sign_in(db, config, c, &form.credential, client.ip()).await;
    match &result {
        Ok(_) => state
            .metrics
            .sign_in(SignInMethod::Passkey, SignInOutcome::Success),
        Err(e) => state.metrics.sign_in_failed(SignInMethod::Passkey, e),
    }
    match result {
        Ok(user) => {
            crate::web::session::sign_in(&session, &user, &state.config, &device).await?;
            Ok(Redirect::to(rd.as_deref().unwrap_or(&next)).into_response())
        }
        Err(e) => {
            let again = super::login::Again {
                username: String::new(),
                next,
                rd: rd.unwrap_or_default(),
                cookie_warning: super::cookie_warning(&state.config, &headers),
            };
            super::login::failed(&state, &session, again, e).await
        }
    }
}

/// `POST /login/two-factor/passkey/options`: a challenge for the second step, naming the
/// passkeys of the account waiting for it.
pub async fn second_factor_options(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, ApiError> {
    let pending = second_step::pending(&state, &session).await?;
    let Some(p) = pending.filter(|p| p.step == Step::Code) else {
        return Err(ServiceError::from(crate::service::Missing::SecondFactor).into());
    };
    let (options, ceremony) =
        passkeys::start_second_factor(&state.db, &state.config, &p.user).await?;
    keep(&session, Purpose::SecondFactor, ceremony).await?;
    Ok(options_answer(options))
}

/// `POST /login/two-factor/passkey`: the second step with a passkey, then signed in.
pub async fn second_factor(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    Form(form): Form<AnswerForm>,
) -> Result<Response, UiError> {
    let pending = second_step::pending(&state, &session).await?;
    let Some(p) = pending.filter(|p| p.step == Step::Code) else {
        return Ok(Redirect::to("/login").into_response());
    };
    if form.credential.is_empty() {
        return Ok(Redirect::to("/login/two-factor").into_response());
    }
    let c = take(&session, Purpose::SecondFactor).await?;
    let (db, config, limiter) = (&state.db, &state.config, &state.limiter);
    let (answer, ip) = (&form.credential, client.ip());
    let result = passkeys::finish_second_factor(db, config, limiter, &p.user, c, answer, ip).await;
    match result {
        Ok(()) => {
            second_step::finish(&session, &p.user, &state.config, &device).await?;
            Ok(Redirect::to(&p.next).into_response())
        }
        Err(e) => super::two_factor::code_failed(&state, &session, p.user, e).await,
    }
}
