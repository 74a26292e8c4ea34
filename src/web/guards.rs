//! Role and status checks, enforced on the server for every route.
//!
//! - [`status_check`]: pending and rejected accounts are signed in but may do nothing except
//!   sign out; everything else answers the "Awaiting approval" / "Access not approved" page
//!   or JSON 403 `ACCOUNT_PENDING` / `ACCOUNT_REJECTED`.
//! - [`RequireAdmin`]: admin-only routes (`/admin/*`, `/api/admin/*`).
//! - A viewer's API key is read-only: [`status_check`] refuses its writes with
//!   `WRITE_ACCESS_REQUIRED`.

use crate::service::Refusal;
use askama::Template;
use axum::extract::{FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};

use super::error::ApiError;
use super::identity::{AuthMethod, AuthRequired, CurrentUser, Identity};
use super::ui::Layout;
use crate::domain::policy::{Credential, may_write};
use crate::domain::{Role, Status};
use tower_sessions::Session;

/// Paths a pending or rejected account may still use.
const ALWAYS_ALLOWED: &[&str] = &["/logout", "/api/auth/logout"];

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    pending: bool,
}

/// `Ok`: the request goes on; `Err`: the answer (the status page, or a JSON refusal).
pub async fn status_check(session: &Session, req: Request) -> Result<Request, Response> {
    let Some(Identity(Some(me))) = req.extensions().get::<Identity>() else {
        return Ok(req);
    };
    let path = req.uri().path();
    let api = super::surface::Surface::api_request(req.extensions());
    if matches!(me.user.status, Status::Pending | Status::Rejected)
        && !ALWAYS_ALLOWED.contains(&path)
    {
        let pending = me.user.status == Status::Pending;
        if api {
            let refusal = if pending {
                Refusal::AccountPending
            } else {
                Refusal::AccountRejected
            };
            return Err(ApiError::from(refusal).into_response());
        }
        let mut layout = Layout::bare(if pending {
            "Awaiting approval"
        } else {
            "Access not approved"
        });
        layout.csrf_token = super::ui::CsrfToken::new(
            super::session::csrf_token(session)
                .await
                .unwrap_or_default(),
        );
        layout.user = Some(super::ui::NavUser {
            username: me.user.username.clone(),
            role: me.user.role,
            pending_count: None,
        });
        let page = StatusPage { layout, pending };
        return Err(match page.render() {
            Ok(html) => (StatusCode::FORBIDDEN, Html(html)).into_response(),
            Err(e) => ApiError::internal(e).into_response(),
        });
    }
    let credential = if me.auth_method == AuthMethod::ApiKey {
        Credential::ApiKey
    } else {
        Credential::Browser
    };
    if !req.method().is_safe() && !may_write(me.user.role, credential) {
        return Err(ApiError::from(Refusal::ReadOnlyKey).into_response());
    }
    Ok(req)
}

/// An active admin.
pub struct RequireAdmin(pub CurrentUser);

/// Rejection of [`RequireAdmin`].
pub enum AdminRejection {
    Auth(AuthRequired),
    Forbidden { api: bool },
}

impl IntoResponse for AdminRejection {
    fn into_response(self) -> Response {
        match self {
            AdminRejection::Auth(a) => a.into_response(),
            AdminRejection::Forbidden { api: true } => {
                ApiError::from(Refusal::AdminOnly).into_response()
            }
            AdminRejection::Forbidden { api: false } => {
                super::error::UiError::from(Refusal::AdminOnly).into_response()
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequireAdmin {
    type Rejection = AdminRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminRejection> {
        let me = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(AdminRejection::Auth)?;
        if me.user.role == Role::Admin && me.user.status == Status::Active {
            Ok(RequireAdmin(me))
        } else {
            Err(AdminRejection::Forbidden {
                api: super::surface::Surface::of_parts(parts).is_api(),
            })
        }
    }
}
