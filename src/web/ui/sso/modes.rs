//! The overview of `/admin/sso`: the provider table, the sign-in switches (step 3 of the
//! wizard) and a provider's button on or off.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::ProviderRow;
use crate::service::ServiceError;
use crate::service::sso::{SignInModes, providers};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "admin/sso.html")]
pub struct OverviewPage {
    layout: Layout,
    providers: Vec<ProviderRow>,
    modes: SignInModes,
    /// The checkboxes as submitted (kept when the save was refused).
    sso_checked: bool,
    local_checked: bool,
    error: Option<String>,
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "saved" => "Sign-in settings saved.",
        "reverted" => {
            "The previous connection settings are back. SSO login was turned off: test the connection, then turn it on again."
        }
        "deleted" => "The provider and its links were removed.",
        "enabled" => "The provider's button is shown on the sign-in page.",
        "disabled" => "The provider's button is hidden.",
        _ => return None,
    })
}

async fn overview(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
) -> Result<OverviewPage, UiError> {
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let modes = providers::modes(&state.db, &state.config.sso).await?;
    Ok(OverviewPage {
        layout: Layout::new("Single sign-on", state, session, Some(me)).await?,
        providers: all.into_iter().map(ProviderRow::from).collect(),
        sso_checked: modes.stored_sso,
        local_checked: modes.stored_local,
        modes,
        error: None,
        notice: None,
    })
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<OverviewPage, UiError> {
    let mut page = overview(&state, &session, &me).await?;
    page.notice = notice(q.notice.as_deref());
    Ok(page)
}

#[derive(Debug, Deserialize)]
pub struct ModesForm {
    sso_enabled: Option<String>,
    local_login_enabled: Option<String>,
}

/// Step 3: "Enable SSO login" and "Local login".
pub async fn save_modes(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Form(form): Form<ModesForm>,
) -> Result<Response, UiError> {
    let sso = form.sso_enabled.is_some();
    let local = form.local_login_enabled.is_some();
    match providers::set_sign_in_modes(
        &state.db,
        &state.secret,
        &state.config.sso,
        me.actor(&client),
        sso,
        local,
    )
    .await
    {
        Ok(()) => Ok(Redirect::to("/admin/sso?notice=saved").into_response()),
        Err(ServiceError::Validation(f)) => {
            let mut page = overview(&state, &session, &me).await?;
            page.error = f.get("local_login_enabled").map(str::to_owned);
            page.sso_checked = sso;
            page.local_checked = local;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    enabled: String,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<EnabledForm>,
) -> Result<Redirect, UiError> {
    let on = form.enabled == "on";
    providers::set_enabled(&state.db, &state.config.sso, me.actor(&client), &id, on).await?;
    Ok(Redirect::to(if on {
        "/admin/sso?notice=enabled"
    } else {
        "/admin/sso?notice=disabled"
    }))
}
