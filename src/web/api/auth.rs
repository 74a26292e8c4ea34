//! `/api/auth/*`: sign in, sign out, who am I.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use utoipa::ToSchema;

use super::ApiJson;
use crate::domain::{FieldErrors, Role, Status};
use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::Refusal;
use crate::service::two_factor::Next;
use crate::service::{ServiceError, auth};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::{ApiError, ErrorBody};
use crate::web::identity::{AuthMethod, CurrentUser};
use crate::web::second_step::{self, Step};
use crate::web::session;

/// The caller as the API shows them. Never carries a hash or a secret.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The account's id (`/api/admin/users/{id}`).
    id: i64,
    username: String,
    /// `null` when the account has none.
    #[schema(required = true)]
    email: Option<String>,
    /// `null` when the account has none.
    #[schema(required = true)]
    display_name: Option<String>,
    role: Role,
    status: Status,
    /// How this request proved who it is: `session` (the cookie of a password or passkey
    /// sign-in), `oidc` (the cookie of a sign-in through an OpenID provider), `proxy` (a
    /// trusted forward-auth proxy's headers), `api_key`, or `bypass` (development only).
    auth_method: AuthMethod,
    /// Send back as `X-CSRF-Token` on state-changing calls made with the session cookie.
    /// Present for browser-borne credentials (the session cookie, a proxy's headers), absent
    /// for an API key, which needs none.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
    /// After a sign-in that carried an allowed `rd`: the app's URL to go on to. Absent
    /// otherwise.
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

/// A password sign-in.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The username or the email address.
    #[serde(default)]
    #[schema(required = true)]
    username: String,
    #[serde(default)]
    #[schema(required = true)]
    password: String,
    /// The address of the app that sent the browser to sign in; answered back as
    /// `redirect_to` when it is one of this instance's apps, ignored otherwise.
    #[serde(default)]
    rd: Option<String>,
}

/// `POST /api/auth/login`.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    summary = "Sign in with a username (or email) and password",
    description = "Sets the session cookie. When the account must also give a second factor, \
        answers `202` instead and the sign-in is finished by \
        `POST /api/auth/login/second-factor` with the same cookie. Wrong credentials count \
        against the rate limit. A disabled or deleted account is refused like a wrong \
        password; a pending or rejected one signs in, and its `status` says where it \
        stands.",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = OK, description = "Signed in: who, and the CSRF token for the session",
            body = Me, headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = ACCEPTED, description = "The password was right; a second factor is needed",
            body = SecondFactorRequired),
        (status = UNAUTHORIZED, description = "`INVALID_CREDENTIALS`", body = ErrorBody),
        (status = FORBIDDEN, description = "`LOCAL_LOGIN_DISABLED` (passwords are turned off), \
            or `SECOND_FACTOR_ENROLMENT_REQUIRED` (the account must set up a second factor \
            first, in the browser)", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: `username` or \
            `password` is empty", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "`RATE_LIMITED`, with `Retry-After`",
            body = ErrorBody),
    )
)]
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
#[derive(Serialize, ToSchema)]
pub struct SecondFactorRequired {
    /// Always `true`.
    second_factor_required: bool,
    /// Where to send the code: `/api/auth/login/second-factor`.
    #[schema(value_type = String)]
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

/// The second step of a sign-in.
#[derive(Deserialize, ToSchema)]
pub struct SecondFactorRequest {
    /// The six digits of the authenticator app, or one of the recovery codes.
    #[serde(default)]
    #[schema(required = true)]
    code: String,
}

/// `POST /api/auth/login/second-factor`: the second step of a sign-in that answered `202`.
/// A code or a recovery code; wrong codes count against the rate limit.
#[utoipa::path(
    post,
    path = "/api/auth/login/second-factor",
    summary = "Finish a sign-in with a second-factor code",
    description = "With the cookie of a `POST /api/auth/login` that answered `202`, within \
        its time limit. Wrong codes count against the rate limit.",
    security(()),
    request_body = SecondFactorRequest,
    responses(
        (status = OK, description = "Signed in", body = Me,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = UNAUTHORIZED, description = "`INVALID_SECOND_FACTOR` (a wrong code), or \
            `UNAUTHENTICATED` (no sign-in waiting for a code: none started, or it expired)",
            body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: `code` is empty",
            body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "`RATE_LIMITED`, with `Retry-After`",
            body = ErrorBody),
    )
)]
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

/// `POST /api/auth/logout`.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    summary = "Sign out",
    description = "Ends the calling session and clears its cookie. With an API key there is \
        no session: nothing ends, the key stays valid.",
    responses((status = NO_CONTENT, description = "Signed out"))
)]
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

/// `GET /api/auth/me`.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    summary = "Who is calling",
    description = "The caller's account, how they proved it, and (with the session cookie) \
        the CSRF token to send as `X-CSRF-Token`.",
    responses((status = OK, description = "The caller", body = Me))
)]
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

/// A change of one's own password.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    #[serde(default)]
    #[schema(required = true)]
    current_password: String,
    /// At least the instance's minimum length.
    #[serde(default)]
    #[schema(required = true)]
    new_password: String,
}

/// `POST /api/me/password`: the same rules as `/account/password`. Every session of the user
/// ends, the calling one included (204; sign in again).
#[utoipa::path(
    post,
    path = "/api/me/password",
    summary = "Change your own password",
    description = "The same rules as the account page. Every session of the account ends, the \
        calling one included: sign in again. API keys stay valid. Wrong current passwords \
        count against the rate limit.",
    request_body = PasswordChange,
    responses(
        (status = NO_CONTENT, description = "Changed; every session of the account has ended"),
        (status = UNPROCESSABLE_ENTITY, description = "`VALIDATION_FAILED`: the current \
            password is wrong, or the new one is too short or too long (in `fields`)",
            body = ErrorBody),
        (status = CONFLICT, description = "`BREAK_GLASS_ACCOUNT`: the environment's \
            break-glass admin's password is set in the configuration", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "`RATE_LIMITED`, with `Retry-After`",
            body = ErrorBody),
    )
)]
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
#[openapi(paths(login, second_factor, logout, me, change_password))]
pub struct Doc;
