//! `/account/two-factor`: the signed-in person's own second factor — its state, setting it
//! up, turning it off.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{CodeForm, CodesPage, EnrolPage};
use crate::service::ServiceError;
use crate::service::two_factor::{self, Status};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "two_factor/account.html")]
pub struct AccountPage {
    layout: Layout,
    status: Status,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "disabled" => Some("Two-factor sign-in is off."),
        _ => None,
    }
}

async fn page_with(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<AccountPage, UiError> {
    Ok(AccountPage {
        layout: Layout::new("Two-factor sign-in", state, session, Some(me)).await?,
        status: two_factor::status(&state.db, &me.user).await?,
        notice,
        error,
    })
}

/// `GET /account/two-factor`: on or off; a set-up in progress is shown again.
pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    if let Some(e) = two_factor::pending(&state.db, &state.secret, &me.user).await? {
        let page = EnrolPage::new(&state, &session, Some(&me), e, None).await?;
        return Ok(page.into_response());
    }
    let page = page_with(&state, &session, &me, notice(q.notice.as_deref()), None).await?;
    Ok(page.into_response())
}

/// `POST /account/two-factor/start`: a new secret, shown with its QR code.
pub async fn start(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<Response, UiError> {
    let enrolment = two_factor::start(&state.db, &state.secret, &me.user).await?;
    let page = EnrolPage::new(&state, &session, Some(&me), enrolment, None).await?;
    Ok(page.into_response())
}

/// `POST /account/two-factor/confirm`: one valid code turns it on; the recovery codes are
/// shown this once.
pub async fn confirm(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<CodeForm>,
) -> Result<Response, UiError> {
    let actor = me.actor(&client);
    match two_factor::confirm(&state.db, &state.secret, actor, &me.user, &form.code).await {
        Ok(codes) => {
            let layout = Layout::new("Recovery codes", &state, &session, Some(&me)).await?;
            let next = "/account/two-factor".to_owned();
            Ok(CodesPage {
                layout,
                codes,
                next,
            }
            .into_response())
        }
        Err(ServiceError::Validation(f)) => {
            let error = f.get("code").map(str::to_owned);
            let enrolment = two_factor::pending(&state.db, &state.secret, &me.user)
                .await?
                .ok_or(UiError::NotFound)?;
            let page = EnrolPage::new(&state, &session, Some(&me), enrolment, error).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/two-factor/disable`: turns it off, proven by a current or recovery code.
pub async fn disable(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<CodeForm>,
) -> Result<Response, UiError> {
    let (db, secret, limiter) = (&state.db, &state.secret, &state.limiter);
    let actor = me.actor(&client);
    let ip = client.ip();
    match two_factor::disable(db, secret, limiter, actor, &me.user, &form.code, ip).await {
        Ok(()) => Ok(Redirect::to("/account/two-factor?notice=disabled").into_response()),
        Err(
            e @ (ServiceError::Refused(_)
            | ServiceError::RateLimited(_)
            | ServiceError::Validation(_)),
        ) => {
            let status = crate::web::error::answer(&e).0;
            let message = match &e {
                ServiceError::Validation(f) => f.summary(),
                other => other.to_string(),
            };
            let page = page_with(&state, &session, &me, None, Some(message)).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
