//! Where a person goes after signing in: back to the app that sent them (`rd`, an absolute
//! URL checked by [`crate::domain::return_to`]) or to a page of Hallpass (`next`, a same-site
//! path). Shared by the password form, single sign-on and the setup wizard.

use crate::config::Config;
use crate::domain::return_to::{self, Allowed};
use crate::web::identity::safe_next;

/// `rd` as the URL to send the browser to, when its host is one of ours; `None` otherwise
/// (ignored, never an error: a stale or forged link still leads to a sign-in).
pub fn allowed_rd(config: &Config, rd: Option<&str>) -> Option<String> {
    let rd = rd.filter(|r| !r.is_empty())?;
    let allowed = Allowed {
        public_host: config.server.public_url.as_ref().map(|u| u.host()),
        cookie_domain: config.session.cookie_domain.as_ref().map(|d| d.as_str()),
        // lead wires apps here: "is this host one of an app's host patterns?"
        is_app_host: &|_| false,
    };
    let url = return_to::parse(rd, &allowed);
    if url.is_none() {
        tracing::info!(rd = %rd.escape_debug().take(200).collect::<String>(), "ignored a sign-in return address outside the public host, the cookie domain and the apps");
    }
    url
}

/// The destination after a sign-in: `rd` when allowed, else the same-site `next`, else `/`.
pub fn destination(config: &Config, rd: Option<&str>, next: Option<&str>) -> String {
    allowed_rd(config, rd).unwrap_or_else(|| safe_next(next))
}
