//! `/register`: self-registration, when an admin has switched it on (404 otherwise).
//!
//! A new account is signed in at once and sent to `/`: an approved (`active`) account lands
//! on the home page, a `pending` one sees the status gate's "Awaiting approval" page until
//! an admin approves it — one path for both, and the person learns where they stand.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::FieldErrors;
use crate::service::accounts::{self, Registration};
use crate::service::{ServiceError, settings};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::identity::MaybeUser;
use crate::web::session;

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
pub struct RegisterPage {
    layout: Layout,
    /// New accounts wait for an admin: the page says so before anyone fills it in.
    needs_approval: bool,
    username: String,
    email: String,
    errors: FieldErrors,
}

pub async fn page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
) -> Result<Response, UiError> {
    let settings = settings::get(&state.db).await?;
    if !settings.registration_enabled {
        return Err(UiError::NotFound);
    }
    if user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(RegisterPage {
        layout: Layout::new("Create an account", &state, &session, None).await?,
        needs_approval: !settings.auto_approve_registrations,
        username: String::new(),
        email: String::new(),
        errors: FieldErrors::new(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn submit(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    client: Client,
    device: Device,
    Form(form): Form<RegisterForm>,
) -> Result<Response, UiError> {
    if user.is_some() {
        // Signed in already: registering would silently swap this session for a new account.
        return Ok(Redirect::to("/").into_response());
    }
    let settings = settings::get(&state.db).await?;
    if !settings.registration_enabled {
        return Err(UiError::NotFound);
    }
    let result = match Registration::parse(
        &form.username,
        &form.email,
        &form.password,
        &form.password_confirm,
    ) {
        // The service checks the setting again, inside its transaction.
        Ok(new) => {
            accounts::register(&state.db, &state.hasher, &state.limiter, new, client.ip()).await
        }
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    match result {
        Ok(user) => {
            tracing::info!(username = %user.username, status = %user.status, "self-registered account");
            session::sign_in(&session, &user, &state.config, &device).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(e) => again(&state, &session, &settings, form, e).await,
    }
}

/// The form again, as typed (never the passwords), with the reason and the status of the
/// one error table; errors that are not about the form get their own page.
async fn again(
    state: &AppState,
    session: &Session,
    settings: &crate::service::settings::Settings,
    form: RegisterForm,
    e: ServiceError,
) -> Result<Response, UiError> {
    let errors = match &e {
        ServiceError::Validation(errors) => errors.clone(),
        ServiceError::RateLimited(l) => FieldErrors::single("username", l.to_string()),
        _ => return Err(e.into()),
    };
    let page = RegisterPage {
        layout: Layout::new("Create an account", state, session, None).await?,
        needs_approval: !settings.auto_approve_registrations,
        username: form.username,
        email: form.email,
        errors,
    };
    let response = (crate::web::error::answer(&e).0, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => crate::web::error::with_retry_after(l, response),
        _ => response,
    })
}
