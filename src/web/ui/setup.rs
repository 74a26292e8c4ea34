//! `/setup`: the first-run wizard that creates the first admin.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::FieldErrors;
use crate::service::accounts::{self, NewAdmin};
use crate::service::{Actor, ServiceError};
use crate::state::AppState;
use crate::web::client::{Client, is_direct_loopback};
use crate::web::error::UiError;
use crate::web::identity::{CurrentUser, MaybeUser};
use crate::web::session;

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct SetupPage {
    layout: Layout,
    /// False once an admin exists: the page then offers no form.
    open: bool,
    /// The one-time code is asked of clients that are not on this machine.
    needs_code: bool,
    username: String,
    email: String,
    errors: FieldErrors,
    /// Providers from the environment: the first identity to sign in becomes the admin.
    sso_providers: Vec<String>,
}

impl SetupPage {
    async fn new(
        state: &AppState,
        session: &Session,
        user: Option<&CurrentUser>,
        open: bool,
        needs_code: bool,
    ) -> Result<Self, UiError> {
        Ok(Self {
            layout: Layout::new("Set up Hallpass", state, session, user).await?,
            open,
            needs_code,
            username: String::new(),
            email: String::new(),
            errors: FieldErrors::new(),
            sso_providers: if state.config.sso.disable_override {
                Vec::new()
            } else {
                state
                    .config
                    .sso
                    .providers
                    .iter()
                    .map(|p| p.label.clone())
                    .collect()
            },
        })
    }
}

pub async fn page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    client: Client,
    headers: HeaderMap,
) -> Result<SetupPage, UiError> {
    let needs_code = !is_direct_loopback(&client.peer, &headers);
    SetupPage::new(
        &state,
        &session,
        user.as_ref(),
        !state.setup.is_done(),
        needs_code,
    )
    .await
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    setup_code: String,
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
    MaybeUser(current): MaybeUser,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, UiError> {
    let needs_code = !is_direct_loopback(&client.peer, &headers);
    if state.setup.is_done() {
        let page = SetupPage::new(&state, &session, current.as_ref(), false, needs_code).await?;
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    let parsed = NewAdmin::parse(
        &form.username,
        &form.email,
        &form.password,
        &form.password_confirm,
    );
    let code_ok = !needs_code || state.setup.code_matches(&form.setup_code);
    let result = match parsed {
        Ok(admin) if code_ok => {
            let actor = Actor {
                ip: Some(client.ip_string()),
                ..Actor::system("setup-wizard")
            };
            accounts::create_first_admin(&state.db, &state.hasher, admin, actor).await
        }
        Ok(_) => Err(ServiceError::Validation(FieldErrors::new())),
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    match result {
        Ok(user) => {
            state.setup.mark_done();
            tracing::info!(username = %user.username, "first admin created by the setup wizard");
            session::sign_in(&session, &user, &state.config).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(ServiceError::AlreadySetUp) => {
            state.setup.mark_done();
            let page =
                SetupPage::new(&state, &session, current.as_ref(), false, needs_code).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(ServiceError::Validation(mut errors)) => {
            if !code_ok {
                errors.add(
                    "setup_code",
                    "The setup code is not correct. It is printed in the server log at start-up.",
                );
            }
            let mut page = SetupPage::new(&state, &session, None, true, needs_code).await?;
            page.username = form.username;
            page.email = form.email;
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
