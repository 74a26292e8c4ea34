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
    /// `(provider id, label, asks for the second factor)` of each OpenID provider.
    sso_providers: Vec<(String, String, bool)>,
    /// Proxy sign-ins ask for the second factor too.
    after_proxy: bool,
    /// Forward-auth proxy sign-in is on (`auth.proxy.enabled`).
    proxy_enabled: bool,
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
    let tf = two_factor::settings(&state.db).await?;
    let providers =
        crate::service::sso::providers::all(&state.db, &state.secret, &state.config.sso).await?;
    Ok(SettingsPage {
        layout: Layout::new("Settings", &state, &session, Some(&me)).await?,
        settings: settings::get(&state.db).await?,
        saved: q.saved.is_some(),
        two_factor: tf.required,
        requirements: Requirement::ALL,
        sso_providers: providers
            .into_iter()
            .map(|p| {
                let asks = tf.sso_providers.contains(&p.id);
                (p.id, p.label, asks)
            })
            .collect(),
        after_proxy: tf.after_proxy,
        proxy_enabled: state.config.auth.proxy.enabled,
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

/// `POST /admin/settings/two-factor`: who must have a second factor (`required`), and the
/// ticked `sso` boxes (repeated field): the providers whose sign-ins ask for it too, and the
/// `proxy` box: whether forward-auth proxy sign-ins do.
pub async fn save_two_factor(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Redirect, UiError> {
    let field = |name: &'static str| fields.iter().filter(move |(k, _)| k == name);
    let required = field("required").next().map_or("", |(_, v)| v.as_str());
    let required = Requirement::parse(required)
        .ok_or_else(|| UiError::BadRequest("Choose nobody, admins or everyone.".to_owned()))?;
    let sso_providers = field("sso").map(|(_, v)| v.clone()).collect();
    let new = two_factor::Settings {
        required,
        sso_providers,
        after_proxy: field("proxy").next().is_some(),
    };
    two_factor::set_settings(&state.db, me.actor(&client), new).await?;
    Ok(Redirect::to("/admin/settings?saved=1"))
}
