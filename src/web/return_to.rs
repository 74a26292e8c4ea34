//! Where a person goes after signing in: back to the app that sent them (`rd`, an absolute
//! URL checked by [`crate::domain::return_to`]) or to a page of Hallpass (`next`, a same-site
//! path). Shared by the password form, single sign-on and the setup wizard.

use crate::domain::return_to::{self, Allowed};
use crate::state::AppState;
use crate::web::identity::safe_next;

/// `rd` as the URL to send the browser to, when its host is one of ours; `None` otherwise
/// (ignored, never an error: a stale or forged link still leads to a sign-in).
pub async fn allowed_rd(state: &AppState, rd: Option<&str>) -> Option<String> {
    let rd = rd.filter(|r| !r.is_empty())?;
    let config = &state.config;
    // The apps' hosts as the rules in force say (cached; a failed read allows none of them).
    let apps = match state.authz.table(&state.db).await {
        Ok(table) => Some(table),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the app rules for a sign-in return address");
            None
        }
    };
    let is_app_host = |host: &str| apps.as_ref().is_some_and(|t| t.knows_host(host));
    let allowed = Allowed {
        public_host: config.server.public_url.as_ref().map(|u| u.host()),
        cookie_domain: config.session.cookie_domain.as_ref().map(|d| d.as_str()),
        is_app_host: &is_app_host,
    };
    let url = return_to::parse(rd, &allowed);
    if url.is_none() {
        tracing::info!(rd = %rd.escape_debug().take(200).collect::<String>(), "ignored a sign-in return address outside the public host, the cookie domain and the apps");
    }
    url
}

/// The destination after a sign-in: `rd` when allowed, else the same-site `next`, else `/`.
pub async fn destination(state: &AppState, rd: Option<&str>, next: Option<&str>) -> String {
    allowed_rd(state, rd)
        .await
        .unwrap_or_else(|| safe_next(next))
}
