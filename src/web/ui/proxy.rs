//! `/admin/proxy` (forward-auth settings and header presets) and `/admin/diagnostics`
//! (what the server sees of the current request — the page people need when a proxy setup
//! does not work).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use serde::Deserialize;
use tower_sessions::Session;

use super::Layout;
use crate::domain::proxy::{HeaderNames, Preset};
use crate::service::proxy;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::ProxyOutcome;

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
    links: Vec<crate::web::ui::sso::LinkRow>,
    proxy_user: String,
    username: String,
    errors: crate::domain::FieldErrors,
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
    let links = state
        .db
        .run(|conn| crate::db::identities::for_provider(conn, crate::domain::sso::PROXY_PROVIDER))
        .await
        .map_err(UiError::internal)?
        .into_iter()
        .map(|(identity, username)| {
            crate::web::ui::sso::LinkRow::from(crate::service::sso::identities::LinkView {
                identity,
                username,
                stale: false,
            })
        })
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
        errors: crate::domain::FieldErrors::new(),
        error: None,
        layout: Layout::new("Forward-auth proxy", state, session, Some(me)).await?,
        enabled: cfg.enabled,
        trusted: cfg.trusted_proxies.clone(),
        policy: cfg.policy.clone(),
        admin_groups: cfg.admin_groups.join(", "),
        viewer_groups: cfg.viewer_groups.join(", "),
        headers: state.proxy.headers(cfg),
        configured: cfg.configured_headers(),
        preset: state
            .proxy
            .preset()
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
) -> Result<axum::response::Response, UiError> {
    use axum::response::IntoResponse;
    let mut errors = crate::domain::FieldErrors::new();
    if form.proxy_user.trim().is_empty() {
        errors.add("proxy_user", "Enter the user name the proxy sends.");
    }
    let key = form.username.trim().to_lowercase();
    let target = state
        .db
        .run(move |conn| crate::db::users::find_by_login(conn, &key))
        .await
        .map_err(UiError::internal)?
        .filter(|u| u.deleted_at.is_none());
    if target.is_none() {
        errors.add("username", "No account has this username.");
    }
    let mut error = None;
    if let (true, Some(user)) = (errors.is_empty(), target) {
        match crate::service::sso::identities::link_at(
            &state.db,
            me.actor(&client).keeping(session.clone()),
            (crate::domain::sso::PROXY_PROVIDER, proxy::PROXY_ISSUER),
            user.id,
            &form.proxy_user,
            None,
        )
        .await
        {
            Ok(_) => {
                return Ok(Redirect::to("/admin/proxy?saved=1").into_response());
            }
            Err(crate::service::ServiceError::Validation(f)) => errors = f,
            Err(e) if let Some(m) = crate::web::error::conflict_message(&e) => error = Some(m),
            Err(e) => return Err(e.into()),
        }
    }
    let mut page = proxy_page(&state, &session, &me).await?;
    page.proxy_user = form.proxy_user;
    page.username = form.username;
    page.errors = errors;
    page.error = error;
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
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
    let preset = match form.preset.as_str() {
        "" | "config" => None,
        other => Some(
            Preset::parse(other)
                .ok_or_else(|| UiError::BadRequest(format!("Unknown preset \"{other}\".")))?,
        ),
    };
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
    let names = state.proxy.headers(cfg);
    let value = |name: &str| {
        (!name.is_empty())
            .then(|| headers.get(name))
            .flatten()
            .map(|v| {
                crate::domain::sso::clean_claim(&String::from_utf8_lossy(v.as_bytes()), 200)
                    .unwrap_or_default()
            })
    };
    let trusted_forwarding = state.config.is_trusted_proxy(client.peer.ip());
    let forwarded = |name: &str| trusted_forwarding.then(|| value(name)).flatten();
    let scheme = forwarded("x-forwarded-proto").unwrap_or_else(|| "http".into());
    let host = forwarded("x-forwarded-host")
        .or_else(|| value("host"))
        .unwrap_or_default();
    Ok(DiagnosticsPage {
        layout: Layout::new("Diagnostics", &state, &session, Some(&me)).await?,
        peer: client.peer.to_string(),
        client_ip: client.ip_string(),
        scheme,
        host,
        public_url: state
            .config
            .server
            .public_url
            .as_ref()
            .map_or_else(|| "(not set)".to_owned(), |u| u.as_str().to_owned()),
        proxy_enabled: cfg.enabled,
        peer_trusted_for_identity: cfg.trusts(client.peer.ip()),
        peer_trusted_for_forwarding: trusted_forwarding,
        identity_headers: vec![
            HeaderRow {
                role: "user",
                value: value(&names.user),
                name: names.user.clone(),
            },
            HeaderRow {
                role: "email",
                value: value(&names.email),
                name: names.email.clone(),
            },
            HeaderRow {
                role: "name",
                value: value(&names.name),
                name: names.name.clone(),
            },
            HeaderRow {
                role: "groups",
                value: value(&names.groups),
                name: names.groups.clone(),
            },
        ],
        forwarding_headers: [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
            "x-real-ip",
        ]
        .iter()
        .filter_map(|h| value(h).map(|v| ((*h).to_owned(), v)))
        .collect(),
        auth_method: match me.auth_method {
            crate::web::identity::AuthMethod::Session => "session cookie",
            crate::web::identity::AuthMethod::ApiKey => "API key",
            crate::web::identity::AuthMethod::Proxy => "forward-auth proxy headers",
            crate::web::identity::AuthMethod::Bypass => "development bypass",
        },
        outcome: outcome.map(|o| match o.0 {
            ProxyOutcome::MissingHeader => {
                "Forward-auth proxy did not provide a user identity header"
            }
            ProxyOutcome::Refused(r) => r.message(),
        }),
    })
}
