//! `/admin/settings`: the instance settings an admin can change (self-registration for now).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::Redirect;
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::service::settings::{self, RegistrationSettings, Settings};
use crate::service::two_factor::{self, Requirement};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;

#[derive(Template, WebTemplate)]
#[template(path = "admin/settings.html")]
pub struct SettingsPage {
    layout: Layout,
    settings: Settings,
    saved: bool,
    /// Who must have a second factor, and the choices.
    two_factor: Requirement,
    requirements: [Requirement; 3],
}

#[derive(Debug, Deserialize)]
pub struct SettingsQuery {
    saved: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(q): Query<SettingsQuery>,
) -> Result<SettingsPage, UiError> {
    Ok(SettingsPage {
        layout: Layout::new("Settings", &state, &session, Some(&me)).await?,
        settings: settings::get(&state.db).await?,
        saved: q.saved.is_some(),
        two_factor: two_factor::requirement(&state.db).await?,
        requirements: Requirement::ALL,
    })
}

/// HTML checkboxes: a ticked box sends its name, an unticked one sends nothing.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    registration_enabled: Option<String>,
    auto_approve_registrations: Option<String>,
}

pub async fn save(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Form(form): Form<SettingsForm>,
) -> Result<Redirect, UiError> {
    let new = RegistrationSettings {
        registration_enabled: form.registration_enabled.is_some(),
        auto_approve_registrations: form.auto_approve_registrations.is_some(),
    };
    settings::update(&state.db, me.actor(&client), new).await?;
    // Post/redirect/get: reloading the page does not submit the form again.
    Ok(Redirect::to("/admin/settings?saved=1"))
}

#[derive(Debug, Deserialize)]
pub struct TwoFactorForm {
    #[serde(default)]
    required: String,
}

/// `POST /admin/settings/two-factor`: who must have a second factor.
pub async fn save_two_factor(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Form(form): Form<TwoFactorForm>,
) -> Result<Redirect, UiError> {
    let new = Requirement::parse(&form.required)
        .ok_or_else(|| UiError::BadRequest("Choose nobody, admins or everyone.".to_owned()))?;
    two_factor::set_requirement(&state.db, me.actor(&client), new).await?;
    Ok(Redirect::to("/admin/settings?saved=1"))
}
