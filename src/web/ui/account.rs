//! `/account`: your details, your password and your API keys.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, UserView, format_time};
use crate::domain::sso::{LinkProblem, LinkedIdentity};
use crate::domain::{ApiKey, FieldErrors, NewApiKey};
use crate::service::sso::{lookup, providers};
use crate::service::{ServiceError, accounts, api_keys};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;
use crate::web::session;
use crate::web::sso_flow;

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
pub struct AccountPage {
    layout: Layout,
    me: UserView,
    has_password: bool,
    errors: FieldErrors,
    notice: Option<&'static str>,
    keys: Vec<KeyRow>,
    /// What was typed into the new-key form, kept when it comes back with errors.
    key_form: KeyForm,
    /// Identities linked to this account: (id, provider label, subject, linked at).
    identities: Vec<(i64, String, String, String)>,
    /// Providers the user may link now: (id, label).
    linkable: Vec<(String, String)>,
    /// Outcome of a Verify & Link or an unlink.
    sso_message: Option<(bool, String)>,
}

/// A key as the account page lists it.
pub struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    created: String,
    last_used: String,
    expires: String,
    expired: bool,
}

impl From<&ApiKey> for KeyRow {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            created: format_time(k.created_at),
            last_used: k
                .last_used_at
                .map_or_else(|| "never".to_owned(), format_time),
            expires: k.expires_at.map_or_else(|| "never".to_owned(), format_time),
            // The clock, not the database's: whether a key has expired is a matter of now.
            expired: k.is_expired(time::OffsetDateTime::now_utc().unix_timestamp()),
        }
    }
}

impl AccountPage {
    async fn new(
        state: &AppState,
        session: &Session,
        me: &CurrentUser,
        errors: FieldErrors,
        key_form: KeyForm,
    ) -> Result<Self, UiError> {
        let keys = api_keys::list_own(&state.db, me.user.id).await?;
        let providers =
            crate::service::sso::providers::all(&state.db, &state.secret, &state.config.sso)
                .await?;
        let modes = crate::service::sso::providers::modes(&state.db, &state.config.sso).await?;
        let label = |id: &str| {
            providers
                .iter()
                .find(|p| p.id == id)
                .map_or_else(|| id.to_owned(), |p| p.label.clone())
        };
        let identities = crate::service::sso::identities::for_user(&state.db, me.user.id)
            .await?
            .into_iter()
            .map(|i| {
                (
                    i.id,
                    label(&i.provider),
                    i.subject,
                    format_time(i.created_at),
                )
            })
            .collect();
        Ok(Self {
            identities,
            linkable: crate::service::sso::login_buttons(modes, &providers),
            sso_message: None,
            layout: Layout::new("Your account", state, session, Some(me)).await?,
            me: UserView::from(me),
            has_password: me.user.password_hash.is_some(),
            errors,
            notice: None,
            keys: keys.iter().map(KeyRow::from).collect(),
            key_form,
        })
    }
}

#[derive(Deserialize)]
pub struct AccountQuery {
    notice: Option<String>,
    linked: Option<String>,
    link_error: Option<String>,
}

/// Messages the page can show after a redirect, by code (never free text from the URL).
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "key_revoked" => Some("The API key was revoked. Anything still using it is refused."),
        _ => None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Query(q): Query<AccountQuery>,
) -> Result<AccountPage, UiError> {
    let mut page = AccountPage::new(
        &state,
        &session,
        &me,
        FieldErrors::new(),
        KeyForm::default(),
    )
    .await?;
    page.notice = notice(q.notice.as_deref());
    page.sso_message = match (q.linked, q.link_error.as_deref(), q.notice.as_deref()) {
        (Some(_), _, _) => Some((
            true,
            "Identity verified and linked: you can now sign in with it.".into(),
        )),
        (_, Some(code), _) => LinkProblem::parse(code).map(|p| (false, p.message().to_owned())),
        (_, _, Some("unlinked")) => Some((true, "Identity unlinked.".into())),
        (_, _, Some("unlinked_local_on")) => Some((
            true,
            "Identity unlinked. It was your last one, so password sign-in was turned back on."
                .into(),
        )),
        _ => None,
    };
    Ok(page)
}

/// Verify & Link from the account page: the identity that comes back is linked to you.
pub async fn link_identity(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> Result<Response, UiError> {
    let p = providers::usable(&state.db, &state.secret, &state.config.sso, &provider)
        .await?
        .ok_or(UiError::NotFound)?;
    sso_flow::begin_link(&state, &headers, &client, &me, &p, "/account".into()).await
}

async fn own_identity(
    state: &AppState,
    me: &CurrentUser,
    id: i64,
) -> Result<LinkedIdentity, UiError> {
    lookup::own_identity(&state.db, me.user.id, id)
        .await?
        .ok_or(UiError::NotFound)
}

pub async fn confirm_unlink(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let link = own_identity(&state, &me, id).await?;
    Ok(super::sso::ConfirmPage::new(
        Layout::new("Unlink identity", &state, &session, Some(&me)).await?,
        format!(
            "Unlink your {} identity {}? You can no longer sign in with it, and your other sessions end.",
            link.provider, link.subject
        ),
        format!("/account/identities/{id}/unlink"),
        "Unlink",
        "/account".into(),
    )
    .into_response())
}

pub async fn unlink_identity(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    own_identity(&state, &me, id).await?;
    let all = providers::all(&state.db, &state.secret, &state.config.sso).await?;
    match crate::service::sso::identities::unlink(
        &state.db,
        &state.config.sso,
        &all,
        me.actor(&client).keeping(session.clone()),
        id,
    )
    .await
    {
        Ok(done) => {
            let notice = super::sso::unlink_notice(done.effect);
            Ok(Redirect::to(&format!("/account?notice={notice}")).into_response())
        }
        Err(e) if let Some(message) = crate::web::error::conflict_message(&e) => {
            let mut page = AccountPage::new(
                &state,
                &session,
                &me,
                FieldErrors::new(),
                KeyForm::default(),
            )
            .await?;
            page.sso_message = Some((false, message));
            Ok((axum::http::StatusCode::CONFLICT, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<PasswordForm>,
) -> Result<Response, UiError> {
    let result = accounts::change_own_password(
        &state.db,
        &state.hasher,
        &state.limiter,
        me.actor(&client),
        &me.user,
        &form.current_password,
        &form.new_password,
        &form.new_password_confirm,
    )
    .await;
    match result {
        Ok(()) => {
            // Every session of the user is gone, this one too: say why on the sign-in page.
            session::sign_out(&session).await?;
            Ok(Redirect::to("/login?notice=password_changed").into_response())
        }
        Err(ServiceError::Validation(errors)) => {
            let page = AccountPage::new(&state, &session, &me, errors, KeyForm::default()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(ServiceError::RateLimited(l)) => {
            let errors = FieldErrors::single("current_password", l.to_string());
            let page = AccountPage::new(&state, &session, &me, errors, KeyForm::default()).await?;
            let response = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
            Ok(crate::web::error::with_retry_after(l, response))
        }
        Err(e) => Err(e.into()),
    }
}

/// The new-key form (`name`, `expires_in_days`: empty for a key that never expires).
#[derive(Deserialize, Default)]
pub struct KeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_days: String,
}

/// Shows a new key, once. Served with `Cache-Control: no-store`: the back button and the
/// browser cache must not keep a copy.
#[derive(Template)]
#[template(path = "api_key_created.html")]
pub struct KeyCreatedPage {
    layout: Layout,
    name: String,
    key: String,
    expires: String,
}

pub async fn create_key(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<KeyForm>,
) -> Result<Response, UiError> {
    let new = match NewApiKey::parse_form(&form.name, &form.expires_in_days) {
        Ok(new) => new,
        Err(errors) => {
            let page = AccountPage::new(&state, &session, &me, errors, form).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let created =
        api_keys::create(&state.db, &state.secret, me.actor(&client), &me.user, new).await?;
    let page = KeyCreatedPage {
        layout: Layout::new("New API key", &state, &session, Some(&me)).await?,
        name: created.key.name.clone(),
        expires: created
            .key
            .expires_at
            .map_or_else(|| "never".to_owned(), format_time),
        key: created.secret,
    };
    let html = page.render().map_err(UiError::internal)?;
    // Set here, not left to the default: this page must never be cached, whatever changes.
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, Html(html)).into_response())
}

/// The confirmation step before a key is revoked (works without JavaScript).
#[derive(Template, WebTemplate)]
#[template(path = "api_key_revoke.html")]
pub struct RevokePage {
    layout: Layout,
    key: KeyRow,
}

pub async fn confirm_revoke(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Path(id): Path<String>,
) -> Result<RevokePage, UiError> {
    let id = id.parse::<i64>().map_err(|_| UiError::NotFound)?;
    let key = api_keys::find_own(&state.db, me.user.id, id).await?;
    Ok(RevokePage {
        layout: Layout::new("Revoke API key", &state, &session, Some(&me)).await?,
        key: KeyRow::from(&key),
    })
}

pub async fn revoke_key(
    State(state): State<AppState>,
    me: CurrentUser,
    client: Client,
    Path(id): Path<String>,
) -> Result<Redirect, UiError> {
    let id = id.parse::<i64>().map_err(|_| UiError::NotFound)?;
    api_keys::revoke_own(&state.db, me.actor(&client), &me.user, id).await?;
    Ok(Redirect::to("/account?notice=key_revoked"))
}
