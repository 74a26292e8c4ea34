//! Who is calling. Resolved once per request by [`resolve`] and read by the extractors:
//! [`CurrentUser`] (must be signed in) and [`MaybeUser`].

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tower_sessions::Session;

use super::error::{ApiError, UiError};
use super::session;
use crate::db::sessions::LOADED_USER_KEY;
use crate::domain::User;
use crate::service::auth;
use crate::state::AppState;

/// How the caller proved who they are. More methods (API key, proxy, SSO) plug in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Session,
    ApiKey,
}

/// A signed-in, active user.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub auth_method: AuthMethod,
}

impl CurrentUser {
    /// This user as the author of a change, for the audit log.
    pub fn actor(&self, client: &super::client::Client) -> crate::service::Actor {
        crate::service::Actor {
            user_id: Some(self.user.id),
            name: self.user.username.clone(),
            ip: Some(client.ip_string()),
        }
    }
}

/// The resolved identity, stored in the request extensions.
#[derive(Debug, Clone, Default)]
pub struct Identity(pub Option<CurrentUser>);

/// Middleware: checks the session against the user's current `session_version` and status
/// on every request, so a bumped version or a disabled account ends sessions at once.
pub async fn resolve(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    match from_session(&state, &session).await {
        Ok(Some((user, signed_in, expiry))) => {
            req.extensions_mut().insert(Identity(Some(user)));
            let response = next.run(req).await;
            session::pin_expiry(&session, &signed_in, expiry).await;
            response
        }
        Ok(None) => {
            req.extensions_mut().insert(Identity(None));
            next.run(req).await
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot resolve the session");
            (
                session::STORE_FAILURE,
                "The session store is unavailable; try again shortly.",
            )
                .into_response()
        }
    }
}

type Resolved = (CurrentUser, session::SignedIn, time::OffsetDateTime);

async fn from_session(
    state: &AppState,
    session: &Session,
) -> Result<Option<Resolved>, Box<dyn std::error::Error + Send + Sync>> {
    let Some(signed_in) = session::signed_in(session).await? else {
        return Ok(None);
    };
    if session::lifetime_over(&signed_in, &state.config) {
        session::sign_out(session).await?;
        return Ok(None);
    }
    // The session query already brought the user's row along (see `db::sessions`).
    let user = match session.get::<User>(LOADED_USER_KEY).await? {
        Some(u) if u.id == signed_in.user_id => {
            Some(u).filter(|u| u.accepts_session(signed_in.session_version))
        }
        _ => auth::session_user(&state.db, signed_in.user_id, signed_in.session_version).await?,
    };
    match user {
        Some(user) => {
            let expiry = session::extend(session, &signed_in, &state.config).await?;
            let current = CurrentUser {
                user,
                auth_method: AuthMethod::Session,
            };
            Ok(Some((current, signed_in, expiry)))
        }
        None => {
            session::sign_out(session).await?;
            Ok(None)
        }
    }
}

/// Rejection for routes that need a user: HTML is sent to the sign-in page (coming back
/// afterwards), JSON gets 401.
pub enum AuthRequired {
    Page { next: String },
    Api,
}

impl IntoResponse for AuthRequired {
    fn into_response(self) -> Response {
        match self {
            AuthRequired::Api => ApiError::unauthenticated().into_response(),
            AuthRequired::Page { next } => {
                let target = format!(
                    "/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Redirect::to(&target).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthRequired;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthRequired> {
        if let Some(Identity(Some(user))) = parts.extensions.get::<Identity>() {
            return Ok(user.clone());
        }
        if parts.uri.path().starts_with("/api/") {
            Err(AuthRequired::Api)
        } else {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned());
            Err(AuthRequired::Page { next })
        }
    }
}

/// The caller, if signed in.
pub struct MaybeUser(pub Option<CurrentUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, UiError> {
        Ok(MaybeUser(
            parts.extensions.get::<Identity>().and_then(|i| i.0.clone()),
        ))
    }
}

/// Only same-site paths are honoured as a post-login destination.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_same_site_only() {
        assert_eq!(safe_next(Some("/account?tab=1")), "/account?tab=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/x\r\nSet-Cookie: a")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
