//! Step 2 of the wizard: the identities linked through a provider, "Verify & Link" (the
//! admin's own identity, through the provider and back), linking a pasted subject to an
//! account, and unlinking.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{ConfirmPage, ProviderRow, find, links_path, provider_label, unlink_notice};
use crate::domain::FieldErrors;
use crate::domain::sso::{LinkProblem, PROXY_PROVIDER};
use crate::service::ServiceError;
use crate::service::sso::identities::{self, LinkView, SubjectField};
use crate::service::sso::{lookup, providers};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{UiError, conflict_message};
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::sso_flow;
use crate::web::ui::{Layout, format_time};

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

/// One linked identity as the admin pages list it (here and on the proxy page).
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
    me: &CurrentUser,
    id: &str,
) -> Result<LinksPage, UiError> {
    let p = find(state, id).await?;
    let links = identities::for_provider(&state.db, &p).await?;
    let title = format!("Single sign-on: {}", p.label);
    Ok(LinksPage {
        layout: Layout::new(title, state, session, Some(me)).await?,
        links: links.into_iter().map(LinkRow::from).collect(),
        provider: ProviderRow::from(p),
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
    page.error = q
        .link_error
        .as_deref()
        .and_then(LinkProblem::parse)
        .map(|p| p.admin_message().to_owned());
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
    sso_flow::begin_link(&state, &headers, &client, &me, &p, back).await
}

#[derive(Debug, Deserialize)]
pub struct ManualLinkForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    username: String,
}

/// Links a pasted subject to the account the admin names.
pub async fn manual_link(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<ManualLinkForm>,
) -> Result<Response, UiError> {
    let p = find(&state, &id).await?;
    let actor = me.actor(&client).keeping(session.clone());
    let at = (p.id.as_str(), p.issuer.as_str());
    let linked = identities::link_named(
        &state.db,
        actor,
        at,
        SubjectField::Oidc,
        &form.subject,
        &form.username,
    );
    let (errors, error) = match linked.await {
        Ok(_) => {
            let to = format!("/admin/sso/providers/{id}/links?notice=linked");
            return Ok(Redirect::to(&to).into_response());
        }
        Err(ServiceError::Validation(f)) => (f, None),
        Err(e) if let Some(m) = conflict_message(&e) => (FieldErrors::new(), Some(m)),
        Err(e) => return Err(e.into()),
    };
    let mut page = links_page(&state, &session, &me, &id).await?;
    page.subject = form.subject;
    page.username = form.username;
    page.errors = errors;
    page.error = error;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn confirm_unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(identity_id): Path<i64>,
) -> Result<ConfirmPage, UiError> {
    let (link, owner) = lookup::identity_and_owner(&state.db, identity_id)
        .await?
        .ok_or(UiError::NotFound)?;
    Ok(ConfirmPage::new(
        Layout::new("Unlink identity", &state, &session, Some(&me)).await?,
        format!(
            "Unlink the {} identity {} from {}? They can no longer sign in with it, and their other sessions end.",
            provider_label(&state, &link.provider).await,
            link.subject,
            owner.username
        ),
        format!("/admin/sso/identities/{identity_id}/unlink"),
        "Unlink",
        links_path(&link.provider),
    ))
}

pub async fn unlink(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(identity_id): Path<i64>,
) -> Result<Response, UiError> {
    let link = lookup::identity(&state.db, identity_id)
        .await?
        .ok_or(UiError::NotFound)?;
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    let actor = me.actor(&client).keeping(session.clone());
    match identities::unlink(&state.db, &state.config.sso, &all, actor, identity_id).await {
        Ok(done) => {
            let notice = unlink_notice(done.effect);
            Ok(
                Redirect::to(&format!("{}?notice={notice}", links_path(&link.provider)))
                    .into_response(),
            )
        }
        // The proxy page has no place for the message: the error page says it.
        Err(e @ ServiceError::Refused(_)) if link.provider == PROXY_PROVIDER => Err(e.into()),
        Err(e) if let Some(message) = conflict_message(&e) => {
            let mut page = links_page(&state, &session, &me, &link.provider).await?;
            page.error = Some(message);
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
