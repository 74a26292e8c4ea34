//! `/setup`: the first-run wizard that creates the first admin.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::FieldErrors;
use crate::service::ServiceError;
use crate::service::accounts::NewAdmin;
use crate::service::setup::{self, Claim, RestoreClaim};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::{UiError, with_retry_after};
use crate::web::identity::{CurrentUser, MaybeUser};
use crate::web::return_to;
use crate::web::session;

#[derive(Template, WebTemplate)]
#[template(path = "setup.html")]
pub struct SetupPage {
    layout: Layout,
    /// False once an admin exists: the page then offers no form.
    open: bool,
    setup_code: String,
    username: String,
    email: String,
    errors: FieldErrors,
    /// The app to go back to once the admin exists (`rd`, already checked), or empty.
    rd: String,
    /// Providers from the environment: the first identity to sign in becomes the admin.
    sso_providers: Vec<String>,
    /// "Restore from backup": what was typed and what was wrong (`setup_code`, `backup`).
    restore_code: String,
    restore_errors: FieldErrors,
    /// The upload limit, in MiB, for the form's hint.
    restore_limit_mib: usize,
    /// After a restore from the setup page: what was loaded.
    restored: Option<crate::service::setup::RestoredInstance>,
}

impl SetupPage {
    async fn new(
        state: &AppState,
        session: &Session,
        user: Option<&CurrentUser>,
        open: bool,
    ) -> Result<Self, UiError> {
        Ok(Self {
            layout: Layout::new("Set up Hallpass", state, session, user).await?,
            open,
            setup_code: String::new(),
            username: String::new(),
            email: String::new(),
            errors: FieldErrors::new(),
            rd: String::new(),
            restore_code: String::new(),
            restore_errors: FieldErrors::new(),
            restore_limit_mib: state.config.backup.upload_limit / (1024 * 1024),
            restored: None,
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

#[derive(Deserialize)]
pub struct SetupQuery {
    /// The app whose forward-auth sent the browser to the sign-in page before any admin
    /// existed (see `web::return_to`).
    rd: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    Query(q): Query<SetupQuery>,
) -> Result<SetupPage, UiError> {
    let mut page = SetupPage::new(&state, &session, user.as_ref(), !state.setup.is_done()).await?;
    page.rd = return_to::allowed_rd(&state, q.rd.as_deref())
        .await
        .unwrap_or_default();
    Ok(page)
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
    #[serde(default)]
    rd: String,
}

pub async fn submit(
    State(state): State<AppState>,
    MaybeUser(current): MaybeUser,
    session: Session,
    client: Client,
    device: Device,
    Form(form): Form<SetupForm>,
) -> Result<Response, UiError> {
    if state.setup.is_done() {
        let page = SetupPage::new(&state, &session, current.as_ref(), false).await?;
        return Ok((StatusCode::CONFLICT, page).into_response());
    }
    let claim = Claim {
        code: &form.setup_code,
        admin: NewAdmin::parse(
            &form.username,
            &form.email,
            &form.password,
            &form.password_confirm,
        ),
        ip: client.ip(),
    };
    let result = setup::claim(
        &state.db,
        &state.hasher,
        &state.limiter,
        &state.setup,
        claim,
    )
    .await;
    match result {
        Ok(user) => {
            tracing::info!(username = %user.username, "first admin created by the setup wizard");
            session::sign_in(&session, &user, &state.config, &device).await?;
            let to = return_to::destination(&state, Some(&form.rd), None).await;
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => again(&state, &session, current.as_ref(), form, e).await,
    }
}

/// The wizard again after a refused claim, with the status of the one error table: "already
/// set up" shows the finished wizard; a wrong code, bad fields or the rate limit re-render
/// the form as typed (never the passwords).
async fn again(
    state: &AppState,
    session: &Session,
    current: Option<&CurrentUser>,
    form: SetupForm,
    e: ServiceError,
) -> Result<Response, UiError> {
    let status = crate::web::error::answer(&e).0;
    let errors = match &e {
        ServiceError::Refused(crate::service::Refusal::AlreadySetUp) => {
            let page = SetupPage::new(state, session, current, false).await?;
            return Ok((status, page).into_response());
        }
        ServiceError::Validation(errors) => errors.clone(),
        ServiceError::RateLimited(l) => FieldErrors::single("setup_code", l.to_string()),
        _ => return Err(e.into()),
    };
    let mut page = SetupPage::new(state, session, None, true).await?;
    page.setup_code = form.setup_code;
    page.username = form.username;
    page.email = form.email;
    page.rd = return_to::allowed_rd(state, Some(&form.rd))
        .await
        .unwrap_or_default();
    page.errors = errors;
    let response = (status, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => with_retry_after(l, response),
        _ => response,
    })
}

/// Where the setup page's "Restore from backup" form posts: the one multipart form, with
/// its own upload limit (`backup.upload_limit`; see `web::csrf`).
pub const RESTORE_PATH: &str = "/setup/restore";

/// "Restore from backup" on the setup page: only while no account exists (afterwards the
/// route answers 404, whatever is sent), with the wizard's setup code.
pub async fn restore(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, UiError> {
    if state.setup.is_done() {
        return Err(UiError::NotFound);
    }
    let (code, backup) = match read_restore_form(form).await {
        Ok(fields) => fields,
        Err(message) => {
            return restore_again(
                &state,
                &session,
                String::new(),
                ServiceError::Validation(FieldErrors::single("backup", message)),
            )
            .await;
        }
    };
    let claim = RestoreClaim {
        code: code.clone(),
        backup,
        ip: client.ip(),
    };
    let data_dir = &state.config.server.data_dir;
    let result = setup::restore(
        &state.db,
        &state.limiter,
        &state.setup,
        &state.secret,
        data_dir,
        claim,
    )
    .await;
    match result {
        Ok(done) => {
            let mut page = SetupPage::new(&state, &session, None, false).await?;
            page.restored = Some(done);
            Ok(page.into_response())
        }
        Err(e) => restore_again(&state, &session, code, e).await,
    }
}

/// The form's `setup_code` and `backup` fields (a missing file is an empty one).
async fn read_restore_form(
    form: Result<Multipart, MultipartRejection>,
) -> Result<(String, Vec<u8>), String> {
    let too_big = |e: &dyn std::fmt::Display| format!("The upload could not be read ({e}).");
    let mut form = form.map_err(|e| too_big(&e))?;
    let (mut code, mut backup) = (String::new(), Vec::new());
    while let Some(field) = form.next_field().await.map_err(|e| too_big(&e))? {
        match field.name() {
            Some("setup_code") => code = field.text().await.map_err(|e| too_big(&e))?,
            Some("backup") => backup = field.bytes().await.map_err(|e| too_big(&e))?.to_vec(),
            _ => {}
        }
    }
    if backup.is_empty() {
        return Err("Choose a backup file (made with `hallpass backup`).".into());
    }
    Ok((code, backup))
}

/// The setup page again with the restore form's errors, under the status of the one error
/// table (422 for a bad file or code, 429 for the rate limit, 409 once set up).
async fn restore_again(
    state: &AppState,
    session: &Session,
    code: String,
    e: ServiceError,
) -> Result<Response, UiError> {
    let status = crate::web::error::answer(&e).0;
    let errors = match &e {
        ServiceError::Validation(errors) => errors.clone(),
        ServiceError::RateLimited(l) => FieldErrors::single("setup_code", l.to_string()),
        ServiceError::Refused(crate::service::Refusal::AlreadySetUp) => {
            let page = SetupPage::new(state, session, None, false).await?;
            return Ok((status, page).into_response());
        }
        _ => return Err(e.into()),
    };
    let mut page = SetupPage::new(state, session, None, true).await?;
    page.restore_code = code;
    page.restore_errors = errors;
    let response = (status, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => with_retry_after(l, response),
        _ => response,
    })
}
