//! `/admin/proxy` (forward-auth settings and header presets) and `/admin/diagnostics`
//! (what the server sees of the current request — the page people need when a proxy setup
//! does not work).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::FieldErrors;
use crate::domain::proxy::{HeaderNames, Preset};
use crate::domain::sso::PROXY_PROVIDER;
use crate::service::ServiceError;
use crate::service::proxy;
use crate::service::sso::identities::{self, SubjectField};
use crate::service::sso::lookup;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::{AuthMethod, ProxyOutcome};
use crate::web::ui::sso::LinkRow;

#[derive(Template, WebTemplate)]
#[template(path = "admin/proxy.html")]
pub struct ProxyPage {
    layout: Layout,
    enabled: bool,
    trusted: Vec<String>,
    policy: String,
    admin_groups: String,
    viewer_groups: String,
    headers: HeaderNames,
    configured: HeaderNames,
    preset: String,
    presets: Vec<(&'static str, &'static str, HeaderNames)>,
    saved: bool,
    /// What "Revert to previous" would bring back (a preset's label), if anything.
    previous: Option<&'static str>,
    reverted: bool,
    links: Vec<LinkRow>,
    proxy_user: String,
    username: String,
    errors: FieldErrors,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
    reverted: Option<String>,
}

async fn proxy_page(
    state: &AppState,
    session: &Session,
    me: &crate::web::identity::CurrentUser,
) -> Result<ProxyPage, UiError> {
    let cfg = &state.config.auth.proxy;
    let links = lookup::proxy_links(&state.db)
        .await?
        .into_iter()
        .map(LinkRow::from)
        .collect();
    let previous = proxy::previous_preset(&state.db)
        .await?
        .map(|p| p.map_or("the configured headers", Preset::label));
    Ok(ProxyPage {
        previous,
        reverted: false,
        links,
        proxy_user: String::new(),
        username: String::new(),
        errors: FieldErrors::new(),
        error: None,
        layout: Layout::new("Forward-auth proxy", state, session, Some(me)).await?,
        enabled: cfg.enabled,
        trusted: cfg.trusted_proxies.clone(),
        policy: cfg.policy.clone(),
        admin_groups: cfg.admin_groups.join(", "),
        viewer_groups: cfg.viewer_groups.join(", "),
        headers: state.proxy.headers_now(&state.db, cfg).await,
        configured: cfg.configured_headers(),
        preset: state
            .proxy
            .current(&state.db)
            .await
            .map_or_else(String::new, |p| p.as_str().to_owned()),
        presets: Preset::ALL
            .into_iter()
            .map(|p| (p.as_str(), p.label(), p.headers()))
            .collect(),
        saved: false,
    })
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(q): Query<SavedQuery>,
) -> Result<ProxyPage, UiError> {
    let mut page = proxy_page(&state, &session, &me).await?;
    page.saved = q.saved.is_some();
    page.reverted = q.reverted.is_some();
    Ok(page)
}

#[derive(Debug, Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    proxy_user: String,
    #[serde(default)]
    username: String,
}

/// Links the user name a proxy sends to an account (what the `link` policy needs).
pub async fn link(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Form(form): Form<LinkForm>,
) -> Result<Response, UiError> {
    let actor = me.actor(&client).keeping(session.clone());
    let at = (PROXY_PROVIDER, proxy::PROXY_ISSUER);
    let linked = identities::link_named(
        &state.db,
        actor,
        at,
        SubjectField::Proxy,
        &form.proxy_user,
        &form.username,
    );
    let (errors, error) = match linked.await {
        Ok(_) => return Ok(Redirect::to("/admin/proxy?saved=1").into_response()),
        Err(ServiceError::Validation(f)) => (f, None),
        Err(e) if let Some(m) = crate::web::error::conflict_message(&e) => {
            (FieldErrors::new(), Some(m))
        }
        Err(e) => return Err(e.into()),
    };
    let mut page = proxy_page(&state, &session, &me).await?;
    page.proxy_user = form.proxy_user;
    page.username = form.username;
    page.errors = errors;
    page.error = error;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct PresetForm {
    #[serde(default)]
    preset: String,
    /// `revert`: bring back the preset the last change replaced.
    #[serde(default)]
    action: String,
}

pub async fn save_preset(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Form(form): Form<PresetForm>,
) -> Result<Redirect, UiError> {
    if form.action == "revert" {
        proxy::revert_preset(&state.db, &state.proxy, me.actor(&client)).await?;
        return Ok(Redirect::to("/admin/proxy?reverted=1"));
    }
    let preset = Preset::choice(&form.preset).map_err(UiError::BadRequest)?;
    proxy::set_preset(&state.db, &state.proxy, me.actor(&client), preset).await?;
    Ok(Redirect::to("/admin/proxy?saved=1"))
}

pub struct HeaderRow {
    pub role: &'static str,
    pub name: String,
    pub value: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/diagnostics.html")]
pub struct DiagnosticsPage {
    layout: Layout,
    peer: String,
    client_ip: String,
    scheme: String,
    host: String,
    public_url: String,
    proxy_enabled: bool,
    peer_trusted_for_identity: bool,
    peer_trusted_for_forwarding: bool,
    identity_headers: Vec<HeaderRow>,
    forwarding_headers: Vec<(String, String)>,
    auth_method: &'static str,
    outcome: Option<&'static str>,
    /// Scheduled backups: the schedule (None: off), where they go, and the last outcomes.
    backup_schedule: Option<String>,
    backup_dir: String,
    backup_last: crate::service::backup::schedule::Last,
}

pub async fn diagnostics(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    outcome: Option<axum::Extension<ProxyOutcome>>,
) -> Result<DiagnosticsPage, UiError> {
    let cfg = &state.config.auth.proxy;
    let value = |name: &str| header_value(&headers, name);
    let trusted_forwarding = state.config.is_trusted_proxy(client.peer.ip());
    let forwarded = |name: &str| trusted_forwarding.then(|| value(name)).flatten();
    let public_url = state.config.server.public_url.as_ref();
    Ok(DiagnosticsPage {
        layout: Layout::new("Diagnostics", &state, &session, Some(&me)).await?,
        peer: client.peer.to_string(),
        client_ip: client.ip_string(),
        scheme: forwarded("x-forwarded-proto").unwrap_or_else(|| "http".into()),
        host: forwarded("x-forwarded-host")
            .or_else(|| value("host"))
            .unwrap_or_default(),
        public_url: public_url.map_or_else(|| "(not set)".to_owned(), |u| u.as_str().to_owned()),
        proxy_enabled: cfg.enabled,
        peer_trusted_for_identity: cfg.trusts(client.peer.ip()),
        peer_trusted_for_forwarding: trusted_forwarding,
        identity_headers: identity_rows(&state.proxy.headers_now(&state.db, cfg).await, &headers),
        forwarding_headers: FORWARDING_HEADERS
            .iter()
            .filter_map(|h| value(h).map(|v| ((*h).to_owned(), v)))
            .collect(),
        auth_method: auth_method_label(me.auth_method),
        outcome: super::login::proxy_banner(outcome.as_ref().map(|e| &e.0)),
        backup_schedule: state.config.backup.schedule.map(|s| s.to_string()),
        backup_dir: state
            .config
            .backup
            .dir_or(&state.config.server.data_dir)
            .display()
            .to_string(),
        backup_last: state.backups.last(),
    })
}

/// Headers that say how the request was forwarded, shown when present.
const FORWARDING_HEADERS: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
];

/// A header's value as the page shows it (control characters removed, capped); `None`
/// when the request has no such header or no name is configured.
fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    (!name.is_empty())
        .then(|| headers.get(name))
        .flatten()
        .map(|v| {
            crate::domain::sso::clean_claim(&String::from_utf8_lossy(v.as_bytes()), 200)
                .unwrap_or_default()
        })
}

/// The identity headers in force and what this request carries in each.
fn identity_rows(names: &HeaderNames, headers: &HeaderMap) -> Vec<HeaderRow> {
    [
        ("user", &names.user),
        ("email", &names.email),
        ("name", &names.name),
        ("groups", &names.groups),
    ]
    .into_iter()
    .map(|(role, name)| HeaderRow {
        role,
        value: header_value(headers, name),
        name: name.clone(),
    })
    .collect()
}

fn auth_method_label(m: AuthMethod) -> &'static str {
    match m {
        AuthMethod::Session => "session cookie",
        AuthMethod::Oidc => "session cookie (single sign-on)",
        AuthMethod::ApiKey => "API key",
        AuthMethod::Proxy => "forward-auth proxy headers",
        AuthMethod::Bypass => "development bypass",
    }
}
