//! `GET /api/auth/oidc/{provider}/login` and `…/callback`: the browser's round trip to an
//! OpenID provider. The protocol — the stored flow, bound to this browser's nonce cookie,
//! single use, ten minutes; the code exchange; who signs in or gets linked — is
//! `service::sso::signin`; these handlers extract what the request carries and turn the
//! outcome into a redirect (and a session). Every failure ends on a page with a banner that
//! says what kind of problem it was; details (never a code or token) go to the log.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

use serde::Deserialize;
use tower_sessions::Session;
use utoipa::IntoParams;

use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::sso::signin::{self, Browser, Outcome, Returned};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::identity::MaybeUser;
use crate::web::return_to;
use crate::web::session;
use crate::web::sso_flow::{self, to_login, with_query};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path on this instance to land on after the sign-in (ignored unless same-site);
    /// `/` when absent.
    next: Option<String>,
    /// The app to go back to after sign-in (see `web::return_to`): an address of one of this
    /// instance's apps, which wins over `next`; ignored otherwise.
    rd: Option<String>,
}

/// A "Sign in with …" button: to the provider, or back to the sign-in page with the reason.
#[utoipa::path(
    get,
    path = "/api/auth/oidc/{provider}/login",
    summary = "Start a sign-in with an OpenID provider (a browser redirect)",
    description = "For a browser, not a script: the answer is a redirect to the provider's \
        authorization page, and the flow is bound to this browser's nonce cookie. When the \
        provider cannot be used (unknown, disabled, single sign-on off, unreachable), the \
        redirect goes to `/login?sso_error=<code>` instead, with `code` one of `unavailable`, \
        `unreachable`, `misconfigured`.",
    security(()),
    params(
        ("provider" = String, Path, description = "The provider's id, as in \
            `/api/admin/sso/providers`"),
        LoginQuery,
    ),
    responses(
        (status = SEE_OTHER, description = "To the provider's authorization endpoint, or back \
            to `/login?sso_error=<code>`",
            headers(("Location" = String, description = "Where the browser goes next"))),
        (status = "5XX", description = "An HTML error page, not JSON (this is a browser's \
            route): the server could not finish, e.g. its database is unreachable",
            content_type = "text/html"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = return_to::destination(&state, q.rd.as_deref(), q.next.as_deref()).await;
    let start = sso_flow::start(&state, &headers, &client, &id, next);
    Ok(
        match signin::start_login(&sso_flow::context(&state), &id, start).await? {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(problem) => to_login(problem),
        },
    )
}

/// What the provider puts in the redirect back (OpenID Connect's authorization response).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// The flow's `state`, as sent to the provider.
    state: Option<String>,
    /// The authorization code, on success.
    code: Option<String>,
    /// The provider's error code, when it refused or the person cancelled.
    error: Option<String>,
}

/// The provider sends the browser back here with a code (or an error).
#[utoipa::path(
    get,
    path = "/api/auth/oidc/{provider}/callback",
    summary = "Finish a sign-in with an OpenID provider (the provider's redirect back)",
    description = "Called by the browser as the provider redirects it, never by a script. \
        Only the browser that started the flow (its nonce cookie), once, within ten minutes. \
        The redirect goes to: the destination of the sign-in (signed in, session cookie set); \
        the second-factor step when Hallpass asks for its own too; the account page with \
        `?linked=<provider>` or `?link_error=<code>` for a \"Verify & link\" started there; \
        or `/login?sso_error=<code>` when the sign-in is refused (`not_linked`, `expired`, \
        `failed`, `unavailable`, `unreachable`, `misconfigured`, `disabled`).",
    security(()),
    params(
        ("provider" = String, Path, description = "The provider's id"),
        CallbackQuery,
    ),
    responses(
        (status = SEE_OTHER, description = "On to where the flow ends (see above)",
            headers(
                ("Location" = String, description = "Where the browser goes next"),
                ("Set-Cookie" = String, description = "The session cookie, when signed in"),
            )),
        (status = "5XX", description = "An HTML error page, not JSON (this is a browser's \
            route): the server could not finish, e.g. its database is unreachable",
            content_type = "text/html"),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    session: Session,
    client: Client,
    device: Device,
    MaybeUser(current): MaybeUser,
    Path(id): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, UiError> {
    let returned = Returned {
        state: q.state,
        code: q.code,
        error: q.error,
    };
    let browser = Browser {
        // The nonce this browser sent: a flow is only found with the one that started it.
        binding: crate::web::csrf::sent_browser_nonce(),
        user: current.as_ref().map(|me| &*me.user),
        ip: client.ip_string(),
        // A link ends the user's other sessions; this one is kept.
        session: Arc::new(session.clone()),
    };
    let outcome = signin::finish(&sso_flow::context(&state), &id, returned, browser)
        .await
        .inspect_err(|e| state.metrics.sign_in_failed(SignInMethod::Oidc, e))?;
    Ok(match outcome {
        Outcome::SignedIn { user, next } => {
            // The provider did its own checks, unless the admin asked for ours too.
            let to = if crate::service::two_factor::provider_asks(&state.db, &id).await? {
                crate::web::second_step::after_provider(&state, &session, &user, &next, &device)
                    .await?
            } else {
                state
                    .metrics
                    .sign_in(SignInMethod::Oidc, SignInOutcome::Success);
                session::sign_in(&session, &user, &state.config, &device).await?;
                session::mark_oidc(&session).await?;
                next
            };
            Redirect::to(&to).into_response()
        }
        Outcome::Linked { provider, next } => {
            Redirect::to(&with_query(&next, "linked", &provider)).into_response()
        }
        Outcome::SignInRefused(problem) => {
            state
                .metrics
                .sign_in(SignInMethod::Oidc, SignInOutcome::Refused);
            to_login(problem)
        }
        Outcome::LinkRefused { problem, next } => {
            Redirect::to(&with_query(&next, "link_error", problem.code())).into_response()
        }
    })
}

/// This module's routes in the OpenAPI document (`api::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(login, callback))]
pub struct Doc;
