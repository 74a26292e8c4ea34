//! Until the first admin exists, every page leads to the setup wizard.

use axum::extract::Request;
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;
use crate::state::AppState;

/// `Ok`: the request goes on; `Err`: the answer (the wizard, or `SETUP_REQUIRED`).
pub async fn check(state: &AppState, req: Request) -> Result<Request, Response> {
    if state.setup.is_done() {
        return Ok(req);
    }
    // Someone else may have created the first admin meanwhile (another instance, or
    // `hallpass recover create-admin`): look again, only while the instance seems empty.
    if let Ok(true) = crate::service::users::any(&state.db).await {
        state.setup.mark_done();
        return Ok(req);
    }
    if req.uri().path() == "/setup" || req.uri().path() == super::ui::setup::RESTORE_PATH {
        return Ok(req);
    }
    // With providers from the environment, the first identity to sign in claims the
    // instance instead of the wizard (first-user-auto-admin).
    let path = req.uri().path();
    let sso_first = !state.config.sso.providers.is_empty() && !state.config.sso.disable_override;
    if sso_first && (path == "/login" || path.starts_with("/api/auth/oidc/")) {
        return Ok(req);
    }
    if super::surface::Surface::api_request(req.extensions()) {
        return Err(ApiError::from(crate::service::Refusal::SetupRequired).into_response());
    }
    Err(Redirect::to(&setup_address(&req)).into_response())
}

/// `/setup`, carrying the `rd` of a forward-auth sign-in link (`/login?rd=…`), so the new
/// admin lands on the app that sent them (checked again by the wizard).
fn setup_address(req: &Request) -> String {
    let rd = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "rd")
            .map(|(_, v)| v.into_owned())
    });
    match rd {
        Some(rd) if req.uri().path() == "/login" => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", &rd)
                .finish();
            format!("/setup?{query}")
        }
        _ => "/setup".to_owned(),
    }
}
