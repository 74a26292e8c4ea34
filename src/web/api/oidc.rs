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

use crate::metrics::{SignInMethod, SignInOutcome};
use crate::service::sso::signin::{self, Browser, Outcome, Returned};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::identity::MaybeUser;
use crate::web::return_to;
use crate::web::session;
use crate::web::sso_flow::{self, to_login, with_query};

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// The app to go back to after sign-in (see `web::return_to`).
    rd: Option<String>,
}

/// A "Sign in with …" button: to the provider, or back to the sign-in page with the reason.
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

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// The provider sends the browser back here with a code (or an error).
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
#[openapi(paths())]
pub struct Doc;
