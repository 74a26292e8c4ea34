//! `/login` and `/logout`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, cookie_warning};
use crate::domain::FieldErrors;
use crate::domain::sso::SignInProblem;
use crate::metrics::SignInMethod;
use crate::service::{Refusal, ServiceError, auth};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::identity::{MaybeUser, safe_next};
use crate::web::return_to;
use crate::web::session;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    layout: Layout,
    username: String,
    next: String,
    /// The app to go back to after sign-in (`rd`, already checked), or empty.
    rd: String,
    error: Option<String>,
    notice: Option<&'static str>,
    cookie_warning: Option<String>,
    /// Self-registration is on: the page links to `/register`.
    registration_open: bool,
    /// The password form is offered.
    local_login: bool,
    /// `(provider id, label)` of each "Sign in with …" button.
    sso_buttons: Vec<(String, String)>,
    /// Why the last single sign-on attempt failed.
    sso_error: Option<&'static str>,
    /// Forward-auth is on: "Sign in with your proxy".
    proxy_mode: bool,
    /// Why the proxy's identity did not sign anyone in.
    proxy_banner: Option<&'static str>,
    /// "Sign in with a passkey" is offered (passkeys work with `server.public_url`).
    passkeys: bool,
}

/// Why the forward-auth proxy's identity did not sign anyone in (sign-in and diagnostics
/// pages).
pub(super) fn proxy_banner(
    outcome: Option<&crate::web::identity::ProxyOutcome>,
) -> Option<&'static str> {
    match outcome? {
        crate::web::identity::ProxyOutcome::MissingHeader => {
            Some("Forward-auth proxy did not provide a user identity header")
        }
        crate::web::identity::ProxyOutcome::Refused(r) => Some(r.message()),
        crate::web::identity::ProxyOutcome::SecondStep => {
            Some("Your proxy signed you in; this server asks for its own second factor too.")
        }
    }
}

/// What the sign-in page shows besides the form: registration link, password form,
/// provider buttons.
struct Modes {
    registration_open: bool,
    local_login: bool,
    sso_buttons: Vec<(String, String)>,
}

async fn modes(state: &AppState) -> Result<Modes, UiError> {
    let (modes, settings) =
        crate::service::sso::providers::modes_and_settings(&state.db, &state.config.sso).await?;
    let providers = if modes.sso {
        crate::service::sso::providers::all(&state.db, &state.secret, &state.config.sso).await?
    } else {
        Vec::new()
    };
    Ok(Modes {
        registration_open: settings.registration_enabled && modes.local,
        local_login: modes.local,
        sso_buttons: crate::service::sso::login_buttons(modes, &providers),
    })
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// The absolute URL of the app that sent the browser here (forward-auth).
    rd: Option<String>,
    notice: Option<String>,
    sso_error: Option<String>,
}

/// Messages the sign-in page can show after a redirect, by code (never free text from the URL).
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "password_changed" => Some(
            "Your password was changed, so every session was signed out — this one too. Sign in with your new password.",
        ),
        "signed_out" => Some("You are signed out."),
        _ => None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    headers: HeaderMap,
    outcome: Option<axum::Extension<crate::web::identity::ProxyOutcome>>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = safe_next(q.next.as_deref());
    let rd = return_to::allowed_rd(&state, q.rd.as_deref()).await;
    if outcome.as_ref().map(|e| e.0) == Some(crate::web::identity::ProxyOutcome::SecondStep) {
        // The password form is no way in for someone the proxy vouched for: the step is.
        return Ok(Redirect::to("/login/two-factor").into_response());
    }
    if let Some(me) = &user {
        if rd.is_some()
            && state.config.session.cookie_domain.is_some()
            && me.auth_method.is_session()
        {
            session::reissue(&session);
        }
        return Ok(Redirect::to(rd.as_deref().unwrap_or(&next)).into_response());
    }
    let m = modes(&state).await?;
    let sso_error = q
        .sso_error
        .as_deref()
        .and_then(SignInProblem::parse)
        .map(SignInProblem::message);
    // A banner about a failed single sign-on is still the sign-in page the browser asked
    // for: 200 (a 401 here made clients and monitors treat the page itself as the failure).
    Ok((
        StatusCode::OK,
        LoginPage {
            layout: Layout::new("Sign in", &state, &session, None).await?,
            username: String::new(),
            next,
            rd: rd.unwrap_or_default(),
            error: None,
            notice: notice(q.notice.as_deref()),
            cookie_warning: cookie_warning(&state.config, &headers),
            registration_open: m.registration_open,
            local_login: m.local_login,
            sso_buttons: m.sso_buttons,
            sso_error,
            proxy_mode: state.config.auth.proxy.enabled,
            proxy_banner: proxy_banner(outcome.as_ref().map(|e| &e.0)),
            passkeys: crate::service::passkeys::availability(&state.config).is_ok(),
        },
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    rd: String,
}

pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let next = safe_next(Some(&form.next));
    let rd = return_to::allowed_rd(&state, Some(&form.rd)).await;
    let result = if form.username.trim().is_empty() || form.password.is_empty() {
        Err(ServiceError::Validation(FieldErrors::single(
            "username", FILL_IN,
        )))
    } else {
        let (db, hasher, limiter) = (&state.db, &state.hasher, &state.limiter);
        let (username, password) = (&form.username, &form.password);
        auth::sign_in(
            db,
            hasher,
            limiter,
            &state.config,
            username,
            password,
            client.ip(),
        )
        .await
        .inspect_err(|e| state.metrics.sign_in_failed(SignInMethod::Password, e))
    };
    match result {
        Ok(user) => {
            let target = rd.as_deref().unwrap_or(&next);
            let to = crate::web::second_step::after_password(
                &state,
                &session,
                &user,
                target,
                &device,
                SignInMethod::Password,
            )
            .await?;
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            let again = Again {
                username: form.username,
                next,
                rd: rd.unwrap_or_default(),
                cookie_warning: cookie_warning(&state.config, &headers),
            };
            failed(&state, &session, again, e).await
        }
    }
}

const FILL_IN: &str = "Enter your username (or email) and your password.";

/// What the form shows again after a failed sign-in (never the password).
pub(super) struct Again {
    pub(super) username: String,
    pub(super) next: String,
    pub(super) rd: String,
    pub(super) cookie_warning: Option<String>,
}

/// The form again after a failed sign-in, with the status of the one error table
/// (`web::error::answer`) and the same words for every account, existing or not. Also the
/// answer to a refused passkey (`super::passkeys`).
pub(super) async fn failed(
    state: &AppState,
    session: &Session,
    again: Again,
    e: ServiceError,
) -> Result<Response, UiError> {
    let message = match &e {
        ServiceError::Validation(_) => FILL_IN.to_owned(),
        ServiceError::Refused(Refusal::LocalLoginDisabled) => {
            "Password sign-in is turned off here: use a \"Sign in with …\" button.".to_owned()
        }
        ServiceError::Refused(
            Refusal::InvalidCredentials | Refusal::InvalidPasskey | Refusal::PasskeysUnavailable(_),
        )
        | ServiceError::RateLimited(_) => e.to_string(),
        _ => return Err(e.into()),
    };
    let m = modes(state).await?;
    let page = LoginPage {
        layout: Layout::new("Sign in", state, session, None).await?,
        username: again.username,
        next: again.next,
        rd: again.rd,
        error: Some(message),
        notice: None,
        cookie_warning: again.cookie_warning,
        registration_open: m.registration_open,
        local_login: m.local_login,
        sso_buttons: m.sso_buttons,
        sso_error: None,
        proxy_mode: state.config.auth.proxy.enabled,
        proxy_banner: None,
        passkeys: crate::service::passkeys::availability(&state.config).is_ok(),
    };
    let response = (crate::web::error::answer(&e).0, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => crate::web::error::with_retry_after(l, response),
        _ => response,
    })
}

/// POST only: a link or an image cannot sign anyone out.
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> Result<impl IntoResponse, UiError> {
    session::sign_out(&session).await?;
    Ok((
        session::leftover_removal(&state.config),
        Redirect::to("/login?notice=signed_out"),
    ))
}
