//! Step 1 of the wizard: a provider's connection settings (add, edit, "Test discovery"),
//! and going back to the previous settings or removing the provider.

use crate::web::surface::Surface;
use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{ConfirmPage, find};
use crate::domain::FieldErrors;
use crate::domain::sso::{Policy, Provider, ProviderFields, Source};
use crate::service::ServiceError;
use crate::service::sso::providers;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{UiError, conflict_message};
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::sso_flow;
use crate::web::ui::Layout;

/// The connection step's form values (never the secret).
#[derive(Debug, Clone, Default)]
pub struct ConnectionValues {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub public_client: bool,
    pub scopes: String,
    pub subject_claim: String,
    pub username_claim: String,
    pub email_claim: String,
    pub groups_claim: String,
    pub policy: String,
}

impl ConnectionValues {
    fn of(p: &Provider) -> Self {
        Self {
            id: p.id.clone(),
            label: p.label.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            public_client: p.is_public_client(),
            scopes: p.scopes.join(" "),
            subject_claim: p.subject_claim.clone(),
            username_claim: p.username_claim.clone(),
            email_claim: p.email_claim.clone(),
            groups_claim: p.groups_claim.clone().unwrap_or_default(),
            policy: p.policy.as_str().to_owned(),
        }
    }

    fn from_fields(f: &ProviderFields) -> Self {
        Self {
            id: f.id.clone(),
            label: f.label.clone(),
            issuer: f.issuer.clone(),
            client_id: f.client_id.clone(),
            public_client: f.public_client.as_deref() == Some("on"),
            scopes: f.scopes.clone(),
            subject_claim: f.subject_claim.clone(),
            username_claim: f.username_claim.clone(),
            email_claim: f.email_claim.clone(),
            groups_claim: f.groups_claim.clone(),
            policy: f.policy.clone(),
        }
    }

    fn blank() -> Self {
        Self {
            scopes: "openid profile email".into(),
            subject_claim: "sub".into(),
            username_claim: "preferred_username".into(),
            email_claim: "email".into(),
            policy: "link".into(),
            ..Self::default()
        }
    }
}

/// The outcome of "Test discovery".
pub struct DiscoveryResult {
    pub ok: bool,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sso_discovery.html")]
pub struct DiscoveryFragment {
    result: DiscoveryResult,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sso_provider.html")]
pub struct ConnectionPage {
    layout: Layout,
    is_new: bool,
    read_only: bool,
    values: ConnectionValues,
    has_secret: bool,
    has_previous: bool,
    errors: FieldErrors,
    discovery: Option<DiscoveryResult>,
    redirect_uri: String,
    /// The redirect URI with `<id>` for the id, which `static/hallpass.js` fills in as the
    /// id of a new provider is typed.
    redirect_template: String,
    error: Option<String>,
    policies: [Policy; 3],
    /// `HALLPASS_OIDC_<this>_*` for environment providers.
    env_prefix: String,
}

/// The request a connection page is rendered for.
#[derive(Clone, Copy)]
struct Screen<'a> {
    state: &'a AppState,
    session: &'a Session,
    me: &'a CurrentUser,
    headers: &'a HeaderMap,
    surface: &'a Surface,
    client: &'a Client,
    /// `None`: a new provider.
    id: Option<&'a str>,
}

async fn connection_page(s: Screen<'_>) -> Result<ConnectionPage, UiError> {
    let (values, read_only, has_secret, has_previous) = match s.id {
        None => (ConnectionValues::blank(), false, false, false),
        Some(id) => {
            let p = find(s.state, id).await?;
            let stored = providers::stored_state(&s.state.db, id).await?;
            (
                ConnectionValues::of(&p),
                p.source == Source::Env,
                stored.as_ref().is_some_and(|s| s.has_secret) || p.client_secret.is_some(),
                stored.as_ref().is_some_and(|s| s.has_previous),
            )
        }
    };
    let title = match s.id {
        None => "Add a provider".to_owned(),
        Some(_) => format!("Single sign-on: {}", values.label),
    };
    let shown_id = if values.id.is_empty() {
        "<id>"
    } else {
        &values.id
    };
    Ok(ConnectionPage {
        layout: Layout::new(title, s.state, s.session, Some(s.me)).await?,
        is_new: s.id.is_none(),
        redirect_uri: sso_flow::redirect_uri(s.state, s.headers, s.client, shown_id),
        redirect_template: sso_flow::redirect_uri(s.state, s.headers, s.client, "<id>"),
        env_prefix: values.id.to_ascii_uppercase().replace('-', "_"),
        read_only,
        values,
        has_secret,
        has_previous,
        errors: FieldErrors::new(),
        discovery: None,
        error: None,
        policies: Policy::ALL,
    })
}

pub async fn new_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    surface: Surface,
) -> Result<ConnectionPage, UiError> {
    connection_page(Screen {
        state: &state,
        session: &session,
        me: &me,
        headers: &headers,
        surface: &surface,
        client: &client,
        id: None,
    })
    .await
}

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    surface: Surface,
    Path(id): Path<String>,
) -> Result<ConnectionPage, UiError> {
    connection_page(Screen {
        state: &state,
        session: &session,
        me: &me,
        headers: &headers,
        surface: &surface,
        client: &client,
        id: Some(&id),
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct ConnectionForm {
    #[serde(flatten)]
    fields: ProviderFields,
    #[serde(default)]
    action: String,
}

async fn test_discovery(state: &AppState, issuer: &str) -> DiscoveryResult {
    let found = crate::service::sso::discovery::test(&state.oidc, issuer).await;
    DiscoveryResult {
        ok: found.ok(),
        message: found.message(),
    }
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    surface: Surface,
    Form(form): Form<ConnectionForm>,
) -> Result<Response, UiError> {
    let screen = Screen {
        state: &state,
        session: &session,
        me: &me,
        headers: &headers,
        surface: &surface,
        client: &client,
        id: None,
    };
    submit_connection(screen, form).await
}

#[expect(clippy::too_many_arguments, reason = "one axum extractor per input")]
pub async fn update(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    surface: Surface,
    Path(id): Path<String>,
    Form(mut form): Form<ConnectionForm>,
) -> Result<Response, UiError> {
    // The id is the URL's; it cannot be renamed by the form.
    form.fields.id = id.clone();
    // Read-only (environment) providers test the issuer they have, not a form field.
    if let Some(p) = state.config.sso.providers.iter().find(|p| p.id == id) {
        form.fields.issuer = p.issuer.clone();
    }
    let screen = Screen {
        state: &state,
        session: &session,
        me: &me,
        headers: &headers,
        surface: &surface,
        client: &client,
        id: Some(&id),
    };
    submit_connection(screen, form).await
}

/// "Test discovery" (the htmx fragment, or the whole page without JavaScript) or "Save".
async fn submit_connection(s: Screen<'_>, form: ConnectionForm) -> Result<Response, UiError> {
    if form.action == "test" {
        return test_connection(s, &form.fields).await;
    }
    let is_new = s.id.is_none();
    let input = match form.fields.parse(is_new) {
        Ok(i) => i,
        Err(errors) => return rerender(s, &form.fields, errors, None).await,
    };
    let provider_id = input.id.clone();
    let (state, actor) = (s.state, s.me.actor(s.client));
    let saved = providers::save(
        &state.db,
        &state.secret,
        &state.config.sso,
        actor,
        input,
        is_new,
    );
    match saved.await {
        Ok(()) => {
            state.oidc.forget(&provider_id);
            let notice = if is_new { "created" } else { "saved" };
            let to = format!("/admin/sso/providers/{provider_id}/links?notice={notice}");
            Ok(Redirect::to(&to).into_response())
        }
        Err(ServiceError::Validation(errors)) => rerender(s, &form.fields, errors, None).await,
        Err(e) if let Some(message) = conflict_message(&e) => {
            rerender(s, &form.fields, FieldErrors::new(), Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn test_connection(s: Screen<'_>, fields: &ProviderFields) -> Result<Response, UiError> {
    let result = test_discovery(s.state, &fields.issuer).await;
    if s.surface.is_fragment() {
        return Ok(DiscoveryFragment { result }.into_response());
    }
    let mut page = connection_page(s).await?;
    if !page.read_only {
        page.values = ConnectionValues::from_fields(fields);
    }
    page.discovery = Some(result);
    Ok(page.into_response())
}

/// The form again, as submitted, with what was wrong.
async fn rerender(
    s: Screen<'_>,
    fields: &ProviderFields,
    errors: FieldErrors,
    error: Option<String>,
) -> Result<Response, UiError> {
    let mut page = connection_page(s).await?;
    page.values = ConnectionValues::from_fields(fields);
    page.errors = errors;
    page.error = error;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn confirm_revert(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<String>,
) -> Result<ConfirmPage, UiError> {
    let p = find(&state, &id).await?;
    Ok(ConfirmPage::new(
        Layout::new("Revert to previous", &state, &session, Some(&me)).await?,
        format!(
            "Restore the connection settings of {} as they were before the last save? SSO login is turned off until you turn it on again.",
            p.label
        ),
        format!("/admin/sso/providers/{id}/revert"),
        "Revert",
        format!("/admin/sso/providers/{id}"),
    ))
}

pub async fn revert(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<Redirect, UiError> {
    providers::revert(&state.db, me.actor(&client), &id).await?;
    state.oidc.forget(&id);
    Ok(Redirect::to("/admin/sso?notice=reverted"))
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<String>,
) -> Result<ConfirmPage, UiError> {
    let p = find(&state, &id).await?;
    Ok(ConfirmPage::new(
        Layout::new("Remove provider", &state, &session, Some(&me)).await?,
        format!(
            "Remove {} and every identity linked through it? People who signed in only with it need a password or another identity first.",
            p.label
        ),
        format!("/admin/sso/providers/{id}/delete"),
        "Remove provider",
        format!("/admin/sso/providers/{id}"),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<String>,
) -> Result<Redirect, UiError> {
    let actor = me.actor(&client).keeping(session);
    providers::delete(&state.db, &state.config.sso, actor, &id).await?;
    state.oidc.forget(&id);
    Ok(Redirect::to("/admin/sso?notice=deleted"))
}
