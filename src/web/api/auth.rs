//! `/api/auth/*`: sign in, sign out, who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::ApiJson;
use crate::domain::{FieldErrors, Role, Status};
use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::Refusal;
use crate::service::two_factor::Next;
use crate::service::{ServiceError, auth};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::ApiError;
use crate::web::identity::{AuthMethod, CurrentUser};
use crate::web::second_step::{self, Step};
use crate::web::session;

/// The caller as the API shows them. Never carries a hash or a secret.
#[derive(Serialize)]
pub struct Me {
    id: i64,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    role: Role,
    status: Status,
    auth_method: AuthMethod,
    /// Send back as `X-CSRF-Token` on state-changing calls made with the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    /// After a sign-in that carried an allowed `rd`: the app's URL to go on to.
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_to: Option<String>,
}

impl Me {
    fn new(c: &CurrentUser, csrf_token: Option<String>) -> Self {
        let u = &c.user;
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            status: u.status,
            auth_method: c.auth_method,
            csrf_token,
            redirect_to: None,
        }
    }
}

#[derive(Deserialize)]
pub struct LoginRequest {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// The app that sent the browser to sign in (see `web::return_to`); ignored unless ours.
    #[serde(default)]
    rd: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<axum::response::Response, ApiError> {
    let mut missing = FieldErrors::new();
    if body.username.trim().is_empty() {
        missing.add("username", "Username (or email) is required.");
    }
    if body.password.is_empty() {
        missing.add("password", "Password is required.");
    }
    if !missing.is_empty() {
        return Err(ServiceError::Validation(missing).into());
    }
    let user = auth::sign_in(
        &state.db,
        &state.hasher,
        &state.limiter,
        &state.config,
        &body.username,
        &body.password,
        client.ip(),
    )
    .await
    .inspect_err(|e| state.metrics.sign_in_failed(SignInMethod::Password, e))?;
    let rd = crate::web::return_to::allowed_rd(&state, body.rd.as_deref()).await;
    let next = crate::service::two_factor::after_password(&state.db, &user).await?;
    let outcome = SignInOutcome::of_next(&next);
    state.metrics.sign_in(SignInMethod::Password, outcome);
    match next {
        Next::Done => session::sign_in(&session, &user, &state.config, &device)
            .await
            .map_err(ApiError::internal)?,
        Next::Code => {
            let target = rd.as_deref().unwrap_or("/");
            second_step::begin(&session, &user, Step::Code, target)
                .await
                .map_err(ApiError::internal)?;
            return Ok((StatusCode::ACCEPTED, Json(SECOND_FACTOR_REQUIRED)).into_response());
        }
        Next::Enrol => return Err(Refusal::SecondFactorEnrolmentRequired.into()),
    }
    signed_in(&session, user, rd)
        .await
        .map(IntoResponse::into_response)
}

/// `202` from `POST /api/auth/login`: the password was right; send a code to
/// `POST /api/auth/login/second-factor` with the same cookie.
#[derive(Serialize)]
struct SecondFactorRequired {
    second_factor_required: bool,
    next: &'static str,
}

const SECOND_FACTOR_REQUIRED: SecondFactorRequired = SecondFactorRequired {
    second_factor_required: true,
    next: "/api/auth/login/second-factor",
};

/// Starts the signed-in session and answers who it is.
async fn signed_in(
    session: &Session,
    user: crate::domain::User,
    rd: Option<String>,
) -> Result<Json<Me>, ApiError> {
    let token = session::csrf_token(session)
        .await
        .map_err(ApiError::internal)?;
    let me = CurrentUser {
        user: std::sync::Arc::new(user),
        auth_method: AuthMethod::Session,
    };
    let mut answer = Me::new(&me, Some(token));
    answer.redirect_to = rd;
    Ok(Json(answer))
}

#[derive(Deserialize)]
pub struct SecondFactorRequest {
    #[serde(default)]
    code: String,
}

/// `POST /api/auth/login/second-factor`: the second step of a sign-in that answered `202`.
/// A code or a recovery code; wrong codes count against the rate limit.
pub async fn second_factor(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    ApiJson(body): ApiJson<SecondFactorRequest>,
) -> Result<Json<Me>, ApiError> {
    if body.code.trim().is_empty() {
        let missing = FieldErrors::single("code", "Code is required.");
        return Err(ServiceError::Validation(missing).into());
    }
    let pending = second_step::pending(&state, &session).await?;
    let Some(p) = pending.filter(|p| p.step == Step::Code) else {
        return Err(Refusal::Unauthenticated.into());
    };
    let (db, secret, limiter) = (&state.db, &state.secret, &state.limiter);
    crate::service::two_factor::verify(db, secret, limiter, &p.user, &body.code, client.ip())
        .await?;
    second_step::finish(&session, &p.user, &state.config, &device)
        .await
        .map_err(ApiError::internal)?;
    let rd = (p.next != "/").then_some(p.next);
    signed_in(&session, p.user, rd).await
}

pub async fn logout(
    State(state): State<AppState>,
    _me: CurrentUser,
    session: Session,
) -> Result<impl IntoResponse, ApiError> {
    session::sign_out(&session)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        session::leftover_removal(&state.config),
        StatusCode::NO_CONTENT,
    ))
}

pub async fn me(me: CurrentUser, session: Session) -> Result<Json<Me>, ApiError> {
    let token = match me.auth_method {
        // Browser-borne credentials (the session cookie; whatever the forward-auth proxy
        // recognises the browser by) need CSRF tokens on writes: this is where scripts in the
        // browser get theirs.
        AuthMethod::Session | AuthMethod::Oidc | AuthMethod::Proxy | AuthMethod::Bypass => Some(
            session::csrf_token(&session)
                .await
                .map_err(ApiError::internal)?,
        ),
        // Bearer calls are not cookie-authenticated and need no CSRF token.
        AuthMethod::ApiKey => None,
    };
    Ok(Json(Me::new(&me, token)))
}

#[derive(Deserialize)]
pub struct PasswordChange {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /api/me/password`: the same rules as `/account/password`. Every session of the user
/// ends, the calling one included (204; sign in again).
pub async fn change_password(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    crate::service::accounts::change_own_password(
        &state.db,
        &state.hasher,
        &state.limiter,
        me.actor(&client),
        &me.user,
        &body.current_password,
        &body.new_password,
        &body.new_password,
    )
    .await?;
    if me.auth_method.is_session() {
        session::sign_out(&session)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;
