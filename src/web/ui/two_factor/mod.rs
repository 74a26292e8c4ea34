//! Two-factor sign-in pages: the second step after a correct password (`/login/two-factor`),
//! the enrolment a required second factor forces before anything else
//! (`/login/two-factor/setup`), and the account's own screen (`account`: `/account/two-factor`).
//! The half-signed-in state itself lives in `web::second_step`.

pub mod account;
pub mod admin;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::FieldErrors;
use crate::service::two_factor::{self, Enrolment};
use crate::service::{Refusal, ServiceError};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::second_step::{self, Pending, Step};

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/code.html")]
pub struct CodePage {
    layout: Layout,
    username: String,
    error: Option<String>,
    /// The account has an authenticator app: the code form is offered.
    totp: bool,
    /// The account has passkeys: "Use a passkey" is offered (with JavaScript).
    passkeys: bool,
}

impl CodePage {
    async fn new(
        state: &AppState,
        session: &Session,
        user: crate::domain::User,
        error: Option<String>,
    ) -> Result<Self, UiError> {
        let passkeys = crate::service::passkeys::has_passkeys(&state.db, user.id).await?;
        Ok(Self {
            layout: Layout::new("Two-factor sign-in", state, session, None).await?,
            // Recovery codes come with an app: without passkeys the form is always there.
            totp: two_factor::is_enrolled(&state.db, user.id).await? || !passkeys,
            passkeys,
            username: user.username,
            error,
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/enrol.html")]
pub struct EnrolPage {
    layout: Layout,
    /// Where the confirmation form posts.
    action: &'static str,
    /// The instance requires it and the visitor is not signed in until it is done.
    enforced: bool,
    secret: String,
    qr_svg: String,
    error: Option<String>,
}

impl EnrolPage {
    async fn new(
        state: &AppState,
        session: &Session,
        me: Option<&crate::web::identity::CurrentUser>,
        enrolment: Enrolment,
        error: Option<String>,
    ) -> Result<Self, UiError> {
        let enforced = me.is_none();
        Ok(Self {
            layout: Layout::new("Set up two-factor sign-in", state, session, me).await?,
            action: if enforced {
                "/login/two-factor/setup"
            } else {
                "/account/two-factor/confirm"
            },
            enforced,
            secret: enrolment.secret,
            qr_svg: enrolment.qr_svg,
            error,
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/codes.html")]
pub struct CodesPage {
    layout: Layout,
    codes: Vec<String>,
    next: String,
}

const ENTER_CODE: &str = "Enter the six-digit code from your app, or a recovery code.";

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The visitor's pending step if it is `step`; otherwise where to send them instead.
async fn pending_at(
    state: &AppState,
    session: &Session,
    step: Step,
) -> Result<Result<Pending, Response>, UiError> {
    Ok(match second_step::pending(state, session).await? {
        Some(p) if p.step == step => Ok(p),
        Some(p) if p.step == Step::Enrol => {
            Err(Redirect::to("/login/two-factor/setup").into_response())
        }
        Some(_) => Err(Redirect::to("/login/two-factor").into_response()),
        None => Err(Redirect::to("/login").into_response()),
    })
}

/// `GET /login/two-factor`: the code form.
pub async fn code_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, UiError> {
    let p = match pending_at(&state, &session, Step::Code).await? {
        Ok(p) => p,
        Err(elsewhere) => return Ok(elsewhere),
    };
    Ok(CodePage::new(&state, &session, p.user, None)
        .await?
        .into_response())
}

/// `POST /login/two-factor`: checks the code (rate-limited), then signs in.
pub async fn code_submit(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    Form(form): Form<CodeForm>,
) -> Result<Response, UiError> {
    let p = match pending_at(&state, &session, Step::Code).await? {
        Ok(p) => p,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let (db, secret, limiter) = (&state.db, &state.secret, &state.limiter);
    let result = if form.code.trim().is_empty() {
        Err(ServiceError::Validation(FieldErrors::single(
            "code", ENTER_CODE,
        )))
    } else {
        two_factor::verify(db, secret, limiter, &p.user, &form.code, client.ip()).await
    };
    match result {
        Ok(()) => {
            second_step::finish(&session, &p.user, &state.config, &device).await?;
            Ok(Redirect::to(&p.next).into_response())
        }
        Err(e) => code_failed(&state, &session, p.user, e).await,
    }
}

/// The second step's page again after a refused code or passkey, with the status of the one
/// error table; any other error gets its own page.
pub(in crate::web::ui) async fn code_failed(
    state: &AppState,
    session: &Session,
    user: crate::domain::User,
    e: ServiceError,
) -> Result<Response, UiError> {
    let error = match &e {
        ServiceError::Validation(_) => ENTER_CODE.to_owned(),
        ServiceError::Refused(
            Refusal::InvalidSecondFactor
            | Refusal::InvalidPasskey
            | Refusal::PasskeysUnavailable(_),
        )
        | ServiceError::RateLimited(_) => e.to_string(),
        _ => return Err(e.into()),
    };
    let page = CodePage::new(state, session, user, Some(error)).await?;
    let response = (crate::web::error::answer(&e).0, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => crate::web::error::with_retry_after(l, response),
        _ => response,
    })
}

/// `GET /login/two-factor/setup`: the enrolment a required second factor forces (a new secret
/// unless one is being set up already).
pub async fn setup_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, UiError> {
    let p = match pending_at(&state, &session, Step::Enrol).await? {
        Ok(p) => p,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let enrolment = match two_factor::pending(&state.db, &state.secret, &p.user).await? {
        Some(e) => e,
        None => two_factor::start(&state.db, &state.secret, &p.user).await?,
    };
    Ok(EnrolPage::new(&state, &session, None, enrolment, None)
        .await?
        .into_response())
}

/// `POST /login/two-factor/setup`: confirms the enrolment, signs in, and shows the recovery
/// codes once.
pub async fn setup_submit(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    Form(form): Form<CodeForm>,
) -> Result<Response, UiError> {
    let p = match pending_at(&state, &session, Step::Enrol).await? {
        Ok(p) => p,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let actor = crate::service::Actor {
        user_id: Some(p.user.id),
        name: p.user.username.clone(),
        ip: Some(client.ip_string()),
        session: None,
    };
    match two_factor::confirm(&state.db, &state.secret, actor, &p.user, &form.code).await {
        Ok(codes) => {
            second_step::finish(&session, &p.user, &state.config, &device).await?;
            let layout = Layout::new("Recovery codes", &state, &session, None).await?;
            Ok(CodesPage {
                layout,
                codes,
                next: p.next,
            }
            .into_response())
        }
        Err(ServiceError::Validation(f)) => {
            let error = f.get("code").map(str::to_owned);
            let enrolment = two_factor::pending(&state.db, &state.secret, &p.user)
                .await?
                .ok_or(UiError::NotFound)?;
            let page = EnrolPage::new(&state, &session, None, enrolment, error).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
