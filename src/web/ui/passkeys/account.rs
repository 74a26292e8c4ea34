//! `/account/passkeys`: the signed-in person's passkeys — the list (name, added, last used),
//! adding one (needs JavaScript: the authenticator is reached through the browser's API),
//! renaming and removing (never the last way in).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{AnswerForm, keep, options_answer, take};
use crate::service::ServiceError;
use crate::service::passkeys::{self, PasskeyView, Purpose};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::{ApiError, UiError};
use crate::web::identity::CurrentUser;
use crate::web::ui::{Layout, format_time};

/// One row of the list.
pub struct Row {
    id: i64,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "passkeys/account.html")]
pub struct Page {
    layout: Layout,
    rows: Vec<Row>,
    /// Why passkeys cannot be added here (`server.public_url`), if they cannot.
    unavailable: Option<String>,
    notice: Option<&'static str>,
    /// An error about the name field of the add form, or about the answer.
    error: Option<String>,
    /// The name typed into the add form, shown again after an error.
    name: String,
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "added" => Some("Passkey added. You can sign in with it now."),
        "renamed" => Some("Passkey renamed."),
        "removed" => Some("Passkey removed."),
        _ => None,
    }
}

async fn page_with(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    notice: Option<&'static str>,
    error: Option<String>,
    name: String,
) -> Result<Page, UiError> {
    let rows = passkeys::list(&state.db, me.user.id)
        .await?
        .into_iter()
        .map(|p: PasskeyView| Row {
            id: p.id,
            name: p.name,
            created: format_time(p.created_at),
            last_used: p
                .last_used_at
                .map_or_else(|| "never".to_owned(), format_time),
        })
        .collect();
    Ok(Page {
        layout: Layout::new("Passkeys", state, session, Some(me)).await?,
        rows,
        unavailable: passkeys::availability(&state.config).err(),
        notice,
        error,
        name,
    })
}

/// The page again with a refusal or a bad name (status of the one error table), or the
/// error's own page.
async fn again(
    state: &AppState,
    session: &Session,
    me: &CurrentUser,
    e: ServiceError,
    name: String,
) -> Result<Response, UiError> {
    let message = match &e {
        ServiceError::Validation(f) => f.summary(),
        ServiceError::Refused(r) if !matches!(r, crate::service::Refusal::NotFound(_)) => {
            r.to_string()
        }
        _ => return Err(e.into()),
    };
    let status = crate::web::error::answer(&e).0;
    let page = page_with(state, session, me, None, Some(message), name).await?;
    Ok((status, page).into_response())
}

/// `GET /account/passkeys`.
pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    let n = notice(q.notice.as_deref());
    Ok(page_with(&state, &session, &me, n, None, String::new())
        .await?
        .into_response())
}

/// `POST /account/passkeys/options`: a challenge for adding a passkey (JSON, for the script).
pub async fn options(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<Response, ApiError> {
    let (options, ceremony) =
        passkeys::start_registration(&state.db, &state.config, &me.user).await?;
    keep(&session, Purpose::Register, ceremony).await?;
    Ok(options_answer(options))
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    answer: AnswerForm,
}

/// `POST /account/passkeys`: stores the new passkey under its name.
pub async fn add(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Form(form): Form<AddForm>,
) -> Result<Response, UiError> {
    if form.answer.credential.is_empty() {
        let e = ServiceError::Validation(crate::domain::FieldErrors::single(
            "credential",
            "No passkey came with the form: adding a passkey needs JavaScript.",
        ));
        return again(&state, &session, &me, e, form.name).await;
    }
    let c = take(&session, Purpose::Register).await?;
    let (db, config, actor) = (&state.db, &state.config, me.actor(&client));
    let answer = &form.answer.credential;
    let result =
        passkeys::finish_registration(db, config, actor, &me.user, c, &form.name, answer).await;
    match result {
        Ok(_) => Ok(Redirect::to("/account/passkeys?notice=added").into_response()),
        Err(e) => again(&state, &session, &me, e, form.name).await,
    }
}

#[derive(Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn rename(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Path(id): Path<String>,
    Form(form): Form<NameForm>,
) -> Result<Response, UiError> {
    let id = passkeys::parse_id(&id)?;
    match passkeys::rename(&state.db, me.actor(&client), me.user.id, id, &form.name).await {
        Ok(()) => Ok(Redirect::to("/account/passkeys?notice=renamed").into_response()),
        Err(e) => again(&state, &session, &me, e, String::new()).await,
    }
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = passkeys::parse_id(&id)?;
    match passkeys::remove(&state.db, me.actor(&client), me.user.id, id).await {
        Ok(()) => Ok(Redirect::to("/account/passkeys?notice=removed").into_response()),
        Err(e) => again(&state, &session, &me, e, String::new()).await,
    }
}
