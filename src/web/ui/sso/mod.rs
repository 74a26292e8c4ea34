//! `/admin/sso`: the single sign-on wizard. Step 1 (connection, with "Test discovery"):
//! `providers`; step 2 (linking: "Verify & Link" or a pasted subject): `links`; step 3 (the
//! SSO and password sign-in switches, on the overview): `modes`. Every form works without
//! JavaScript; htmx only swaps the discovery result in place. This module holds what the
//! steps share: the provider row, the confirmation page, the provider lookup.

mod links;
mod modes;
mod providers;

use askama::Template;
use askama_web::WebTemplate;

pub use links::{LinkRow, confirm_unlink, links, manual_link, unlink, verify_and_link};
pub use modes::{page, save_modes, set_enabled};
pub use providers::{
    confirm_delete, confirm_revert, create, delete, edit_form, new_form, revert, update,
};

use super::Layout;
use crate::domain::sso::{PROXY_PROVIDER, Policy, Provider, Source, UnlinkEffect};
use crate::state::AppState;
use crate::web::error::UiError;

/// One row of the provider table (and the heading of a provider's pages).
pub struct ProviderRow {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub policy: Policy,
    pub enabled: bool,
    pub from_env: bool,
}

impl From<Provider> for ProviderRow {
    fn from(p: Provider) -> Self {
        Self {
            from_env: p.source == Source::Env,
            id: p.id,
            label: p.label,
            issuer: p.issuer,
            policy: p.policy,
            enabled: p.enabled,
        }
    }
}

/// "Are you sure?" before an unlink, a revert or a removal (works without JavaScript).
#[derive(Template, WebTemplate)]
#[template(path = "admin/sso_confirm.html")]
pub struct ConfirmPage {
    layout: Layout,
    question: String,
    action: String,
    button: &'static str,
    cancel: String,
}

impl ConfirmPage {
    pub fn new(
        layout: Layout,
        question: String,
        action: String,
        button: &'static str,
        cancel: String,
    ) -> Self {
        Self {
            layout,
            question,
            action,
            button,
            cancel,
        }
    }
}

/// The provider `id`, enabled or not, or a 404.
async fn find(state: &AppState, id: &str) -> Result<Provider, UiError> {
    crate::service::sso::providers::find(&state.db, &state.secret, &state.config.sso, id)
        .await?
        .ok_or(UiError::NotFound)
}

/// A provider's label for sentences ("forward-auth proxy" for proxy links).
async fn provider_label(state: &AppState, id: &str) -> String {
    if id == PROXY_PROVIDER {
        return "forward-auth proxy".to_owned();
    }
    match crate::service::sso::providers::find(&state.db, &state.secret, &state.config.sso, id)
        .await
    {
        Ok(Some(p)) => p.label,
        _ => id.to_owned(),
    }
}

/// Where the links of a provider are listed (forward-auth links live on the proxy page).
fn links_path(provider: &str) -> String {
    if provider == PROXY_PROVIDER {
        "/admin/proxy".to_owned()
    } else {
        format!("/admin/sso/providers/{provider}/links")
    }
}

/// The notice after an unlink (account page and admin pages alike).
pub fn unlink_notice(effect: UnlinkEffect) -> &'static str {
    match effect {
        UnlinkEffect::Plain => "unlinked",
        UnlinkEffect::TurnsLocalLoginOn => "unlinked_local_on",
    }
}
