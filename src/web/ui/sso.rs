//! `/admin/sso`: the single sign-on wizard. Step 1 (connection, with "Test discovery"),
//! step 2 (linking: "Verify & Link" or a pasted subject), step 3 (the SSO and password
//! sign-in switches, on the overview). Every form works without JavaScript; htmx only
//! swaps the discovery result in place.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, format_time};
use crate::domain::FieldErrors;
use crate::domain::sso::{Policy, Provider, ProviderFields, Source};
use crate::service::ServiceError;
use crate::service::rate_limit::{Action, Attempt};
use crate::service::sso::identities::{self, LinkView};
use crate::service::sso::oidc::Purpose;
use crate::service::sso::{SignInModes, providers};
use crate::state::AppState;
use crate::web::api::oidc::{self as flow, Banner};
use crate::web::client::Client;
use crate::web::error::{UiError, conflict_message};
use crate::web::guards::RequireAdmin;

/// One row of the provider table.
pub struct ProviderRow {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub policy: Policy,
    pub enabled: bool,
    pub from_env: bool,
}

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
    me: &crate::web::identity::CurrentUser,
) -> Result<OverviewPage, UiError> {
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let modes = providers::modes(&state.db, &state.config.sso).await?;
    Ok(OverviewPage {
        layout: Layout::new("Single sign-on", state, session, Some(me)).await?,
        providers: all
            .into_iter()
            .map(|p| ProviderRow {
                from_env: p.source == Source::Env,
                id: p.id,
                label: p.label,
                issuer: p.issuer,
                policy: p.policy,
                enabled: p.enabled,
            })
            .collect(),
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
    error: Option<String>,
    policies: [Policy; 3],
    /// `HALLPASS_OIDC_<this>_*` for environment providers.
    env_prefix: String,
}

async fn connection_page(
    state: &AppState,
    session: &Session,
    me: &crate::web::identity::CurrentUser,
    headers: &HeaderMap,
    client: &Client,
    id: Option<&str>,
) -> Result<ConnectionPage, UiError> {
    let (values, read_only, has_secret, has_previous) = match id {
        None => (ConnectionValues::blank(), false, false, false),
        Some(id) => {
            let p = find(state, id).await?;
            let stored = providers::stored_state(&state.db, id).await?;
            (
                ConnectionValues::of(&p),
                p.source == Source::Env,
                stored.as_ref().is_some_and(|s| s.has_secret) || p.client_secret.is_some(),
                stored.as_ref().is_some_and(|s| s.has_previous),
            )
        }
    };
    let title = if id.is_none() {
        "Add a provider".to_owned()
    } else {
        format!("Single sign-on: {}", values.label)
    };
    Ok(ConnectionPage {
        layout: Layout::new(title, state, session, Some(me)).await?,
        is_new: id.is_none(),
        redirect_uri: flow::redirect_uri(
            state,
            headers,
            client,
            if values.id.is_empty() {
                "<id>"
            } else {
                &values.id
            },
        ),
        read_only,
        values,
        has_secret,
        has_previous,
        errors: FieldErrors::new(),
        discovery: None,
        error: None,
        policies: Policy::ALL,
        env_prefix: String::new(),
    })
    .map(|mut page| {
        page.env_prefix = page.values.id.to_ascii_uppercase().replace('-', "_");
        page
    })
}

async fn find(state: &AppState, id: &str) -> Result<Provider, UiError> {
    providers::find(&state.db, &state.secret, &state.config.sso, id)
        .await?
        .ok_or(UiError::NotFound)
}

pub async fn new_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
) -> Result<ConnectionPage, UiError> {
    connection_page(&state, &session, &me, &headers, &client, None).await
}

pub async fn edit_form(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ConnectionPage, UiError> {
    connection_page(&state, &session, &me, &headers, &client, Some(&id)).await
}

#[derive(Debug, Deserialize)]
pub struct ConnectionForm {
    #[serde(flatten)]
    fields: ProviderFields,
    #[serde(default)]
    action: String,
}

async fn test_discovery(state: &AppState, issuer: &str) -> DiscoveryResult {
    match crate::domain::sso::parse_issuer(issuer) {
        Err(m) => DiscoveryResult {
            ok: false,
            message: m,
        },
        Ok(issuer) => match state.oidc.discover(&issuer).await {
            Ok(meta) => DiscoveryResult {
                ok: true,
                message: format!(
                    "Discovery succeeded: authorization, token{} endpoints and {} signing key(s) found.",
                    if meta.userinfo_endpoint().is_some() {
                        ", userinfo"
                    } else {
                        ""
                    },
                    meta.jwks().keys().len()
                ),
            },
            // Say which side has to act: the settings (issuer URL, provider setup) or the
            // network.
            Err(problem) if problem.is_misconfiguration() => DiscoveryResult {
                ok: false,
                message: format!("Misconfigured: {problem}"),
            },
            Err(problem) => DiscoveryResult {
                ok: false,
                message: problem.to_string(),
            },
        },
    }
}

pub async fn create(
    state: State<AppState>,
    admin: RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<ConnectionForm>,
) -> Result<Response, UiError> {
    submit_connection(state, admin, session, client, headers, None, form).await
}

pub async fn update(
    state: State<AppState>,
    admin: RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(mut form): Form<ConnectionForm>,
) -> Result<Response, UiError> {
    // The id is the URL's; it cannot be renamed by the form.
    form.fields.id = id.clone();
    // Read-only (environment) providers test the issuer they have, not a form field.
    if let Some(p) = state.config.sso.providers.iter().find(|p| p.id == id) {
        form.fields.issuer = p.issuer.clone();
    }
    submit_connection(state, admin, session, client, headers, Some(id), form).await
}

async fn submit_connection(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    id: Option<String>,
    form: ConnectionForm,
) -> Result<Response, UiError> {
    if form.action == "test" {
        let result = test_discovery(&state, &form.fields.issuer).await;
        if headers.contains_key("hx-request") {
            return Ok(DiscoveryFragment { result }.into_response());
        }
        let mut page =
            connection_page(&state, &session, &me, &headers, &client, id.as_deref()).await?;
        if !page.read_only {
            page.values = ConnectionValues::from_fields(&form.fields);
        }
        page.discovery = Some(result);
        return Ok(page.into_response());
    }
    let is_new = id.is_none();
    let rerender = |errors: FieldErrors, error: Option<String>| {
        let state = state.clone();
        let session = session.clone();
        let me = me.clone();
        let headers = headers.clone();
        let id = id.clone();
        let fields = form.fields.clone();
        async move {
            let mut page =
                connection_page(&state, &session, &me, &headers, &client, id.as_deref()).await?;
            page.values = ConnectionValues::from_fields(&fields);
            page.errors = errors;
            page.error = error;
            Ok::<Response, UiError>((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    };
    let input = match form.fields.parse(is_new) {
        Ok(i) => i,
        Err(errors) => return rerender(errors, None).await,
    };
    let provider_id = input.id.clone();
    match providers::save(
        &state.db,
        &state.secret,
        &state.config.sso,
        me.actor(&client),
        input,
        is_new,
    )
    .await
    {
        Ok(()) => {
            state.oidc.forget(&provider_id);
            let to = if is_new {
                format!("/admin/sso/providers/{provider_id}/links?notice=created")
            } else {
                format!("/admin/sso/providers/{provider_id}/links?notice=saved")
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(ServiceError::Validation(errors)) => rerender(errors, None).await,
        Err(e) if let Some(message) = conflict_message(&e) => {
            rerender(FieldErrors::new(), Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/sso_links.html")]
pub struct LinksPage {
    layout: Layout,
    provider: ProviderRow,
    links: Vec<LinkRow>,
    subject: String,
    username: String,
    errors: FieldErrors,
    notice: Option<String>,
    error: Option<String>,
}

pub struct LinkRow {
    pub id: i64,
    pub username: String,
    pub subject: String,
    pub email: String,
    pub linked_at: String,
    pub last_login: String,
    pub stale: bool,
    pub issuer: String,
}

impl From<LinkView> for LinkRow {
    fn from(v: LinkView) -> Self {
        Self {
            id: v.identity.id,
            username: v.username,
            subject: v.identity.subject,
            email: v.identity.email.unwrap_or_default(),
            linked_at: format_time(v.identity.created_at),
            last_login: v
                .identity
                .last_login_at
                .map_or_else(|| "never".to_owned(), format_time),
            stale: v.stale,
            issuer: v.identity.issuer,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LinksQuery {
    notice: Option<String>,
    linked: Option<String>,
    link_error: Option<String>,
}

async fn links_page(
    state: &AppState,
    session: &Session,
    me: &crate::web::identity::CurrentUser,
    id: &str,
) -> Result<LinksPage, UiError> {
    let p = find(state, id).await?;
    let links = identities::for_provider(&state.db, &p).await?;
    Ok(LinksPage {
        layout: Layout::new(
            format!("Single sign-on: {}", p.label),
            state,
            session,
            Some(me),
        )
        .await?,
        links: links.into_iter().map(LinkRow::from).collect(),
        provider: ProviderRow {
            from_env: p.source == Source::Env,
            id: p.id,
            label: p.label,
            issuer: p.issuer,
            policy: p.policy,
            enabled: p.enabled,
        },
        subject: String::new(),
        username: String::new(),
        errors: FieldErrors::new(),
        notice: None,
        error: None,
    })
}

pub async fn links(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<LinksQuery>,
) -> Result<LinksPage, UiError> {
    let mut page = links_page(&state, &session, &me, &id).await?;
    page.notice = match (q.notice.as_deref(), q.linked.is_some()) {
        (_, true) => Some(format!(
            "Verified: your identity at {} is now linked to your account ({}). Client id, secret and redirect URI work.",
            page.provider.label, me.user.username
        )),
        (Some("created"), _) => Some(
            "Provider saved. Next: link an identity — Verify & Link proves the whole connection works."
                .into(),
        ),
        (Some("saved"), _) => Some("Connection settings saved.".into()),
        (Some("linked"), _) => Some("Identity linked.".into()),
        (Some("unlinked"), _) => Some("Identity unlinked.".into()),
        (Some("unlinked_local_on"), _) => Some(
            "Identity unlinked. It was your last one, so password sign-in was turned back on.".into(),
        ),
        _ => None,
    };
    page.error = q.link_error.as_deref().and_then(|c| match c {
        "already_linked" => Some("That identity is already linked to your account.".to_owned()),
        "taken" => Some(
            "That identity is already linked to another account: unlink it there first.".to_owned(),
        ),
        other => Banner::message(other).map(str::to_owned),
    });
    Ok(page)
}

/// "Verify & Link": the admin goes to the provider and back; the identity that comes back
/// is linked to their own account and their session carries on.
pub async fn verify_and_link(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let p = find(&state, &id).await?;
    let back = format!("/admin/sso/providers/{id}/links");
    let attempt =
        Attempt::new(Action::SsoLink, client.ip(), Some(&me.user.username)).by(me.actor(&client));
    let start = flow::begin(
        &state,
        &headers,
        &client,
        &p,
        Purpose::Link {
            user_id: me.user.id,
        },
        back.clone(),
    );
    match state
        .limiter
        .guard(attempt, async { Ok(start.await) })
        .await?
    {
        Ok(r) => Ok(r),
        Err(b) => Ok(Redirect::to(&format!("{back}?link_error={}", b.code())).into_response()),
    }
}

#[derive(Debug, Deserialize)]
pub struct ManualLinkForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    username: String,
}

pub async fn manual_link(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<ManualLinkForm>,
) -> Result<Response, UiError> {
    let p = find(&state, &id).await?;
    let mut errors = FieldErrors::new();
    if form.subject.trim().is_empty() {
        errors.add("subject", "Enter the subject (sub) of the identity.");
    }
    let key = form.username.trim().to_lowercase();
    let target = if key.is_empty() {
        errors.add("username", "Enter the username of the account to link.");
        None
    } else {
        let found = state
            .db
            .run(move |conn| crate::db::users::find_by_login(conn, &key))
            .await
            .map_err(UiError::internal)?
            .filter(|u| u.deleted_at.is_none());
        if found.is_none() {
            errors.add("username", "No account has this username.");
        }
        found
    };
    let mut error = None;
    if let (true, Some(user)) = (errors.is_empty(), &target) {
        match identities::link(
            &state.db,
            me.actor(&client).keeping(session.clone()),
            &p,
            user.id,
            &form.subject,
            None,
        )
        .await
        {
            Ok(_) => {
                return Ok(
                    Redirect::to(&format!("/admin/sso/providers/{id}/links?notice=linked"))
                        .into_response(),
                );
            }
            Err(ServiceError::Validation(f)) => errors = f,
            Err(e) if let Some(m) = conflict_message(&e) => error = Some(m),
            Err(e) => return Err(e.into()),
        }
    }
    let mut page = links_page(&state, &session, &me, &id).await?;
    page.subject = form.subject;
    page.username = form.username;
    page.errors = errors;
    page.error = error;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

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

pub async fn confirm_unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(identity_id): Path<i64>,
) -> Result<ConfirmPage, UiError> {
    let link = state
        .db
        .run(move |conn| crate::db::identities::get(conn, identity_id))
        .await
        .map_err(UiError::internal)?
        .ok_or(UiError::NotFound)?;
    let user_id = link.user_id;
    let owner = state
        .db
        .run(move |conn| crate::db::users::find_by_id(conn, user_id))
        .await
        .map_err(UiError::internal)?
        .ok_or(UiError::NotFound)?;
    Ok(ConfirmPage {
        layout: Layout::new("Unlink identity", &state, &session, Some(&me)).await?,
        question: format!(
            "Unlink the {} identity {} from {}? They can no longer sign in with it, and their other sessions end.",
            provider_label(&state, &link.provider).await,
            link.subject,
            owner.username
        ),
        action: format!("/admin/sso/identities/{identity_id}/unlink"),
        button: "Unlink",
        cancel: links_path(&link.provider),
    })
}

pub async fn unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(identity_id): Path<i64>,
) -> Result<Response, UiError> {
    let link = state
        .db
        .run(move |conn| crate::db::identities::get(conn, identity_id))
        .await
        .map_err(UiError::internal)?
        .ok_or(UiError::NotFound)?;
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let back = links_path(&link.provider);
    match identities::unlink(
        &state.db,
        &state.config.sso,
        &all,
        me.actor(&client).keeping(session.clone()),
        identity_id,
    )
    .await
    {
        Ok(done) => {
            let notice = match done.effect {
                crate::domain::sso::UnlinkEffect::Plain => "unlinked",
                crate::domain::sso::UnlinkEffect::TurnsLocalLoginOn => "unlinked_local_on",
            };
            Ok(Redirect::to(&format!("{back}?notice={notice}")).into_response())
        }
        Err(e @ ServiceError::Refused(_))
            if link.provider == crate::domain::sso::PROXY_PROVIDER =>
        {
            Err(e.into())
        }
        Err(e) if let Some(message) = conflict_message(&e) => {
            let mut page = links_page(&state, &session, &me, &link.provider).await?;
            page.error = Some(message);
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// A provider's label for sentences ("Forward-auth proxy" for proxy links).
async fn provider_label(state: &AppState, id: &str) -> String {
    if id == crate::domain::sso::PROXY_PROVIDER {
        return "forward-auth proxy".to_owned();
    }
    match providers::find(&state.db, &state.secret, &state.config.sso, id).await {
        Ok(Some(p)) => p.label,
        _ => id.to_owned(),
    }
}

/// Where the links of a provider are listed (forward-auth links live on the proxy page).
fn links_path(provider: &str) -> String {
    if provider == crate::domain::sso::PROXY_PROVIDER {
        "/admin/proxy".to_owned()
    } else {
        format!("/admin/sso/providers/{provider}/links")
    }
}

pub async fn confirm_revert(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<String>,
) -> Result<ConfirmPage, UiError> {
    let p = find(&state, &id).await?;
    Ok(ConfirmPage {
        layout: Layout::new("Revert to previous", &state, &session, Some(&me)).await?,
        question: format!(
            "Restore the connection settings of {} as they were before the last save? SSO login is turned off until you turn it on again.",
            p.label
        ),
        action: format!("/admin/sso/providers/{id}/revert"),
        button: "Revert",
        cancel: format!("/admin/sso/providers/{id}"),
    })
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
    Ok(ConfirmPage {
        layout: Layout::new("Remove provider", &state, &session, Some(&me)).await?,
        question: format!(
            "Remove {} and every identity linked through it? People who signed in only with it need a password or another identity first.",
            p.label
        ),
        action: format!("/admin/sso/providers/{id}/delete"),
        button: "Remove provider",
        cancel: format!("/admin/sso/providers/{id}"),
    })
}

pub async fn delete(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<Redirect, UiError> {
    providers::delete(&state.db, &state.config.sso, me.actor(&client), &id).await?;
    state.oidc.forget(&id);
    Ok(Redirect::to("/admin/sso?notice=deleted"))
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
    providers::set_enabled(&state.db, me.actor(&client), &id, on).await?;
    Ok(Redirect::to(if on {
        "/admin/sso?notice=enabled"
    } else {
        "/admin/sso?notice=disabled"
    }))
}
