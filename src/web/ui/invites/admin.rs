//! `GET /admin/invites` (every invite with its state, and the create form), `POST
//! /admin/invites` (create, then the link, shown once), and `GET|POST
//! /admin/invites/{id}/revoke` (ask, then revoke).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::InviteRow;
use crate::domain::FieldErrors;
use crate::domain::invite::{DEFAULT_EXPIRY_DAYS, InviteFields, MAX_EXPIRY_DAYS, NewInvite};
use crate::service::{ServiceError, groups, invites};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::{Layout, format_time};

/// The create form's values, kept when it comes back with errors.
pub struct InviteForm {
    email: String,
    username: String,
    role: String,
    groups: Vec<i64>,
    expires_in_days: String,
    needs_approval: bool,
}

impl Default for InviteForm {
    fn default() -> Self {
        Self {
            email: String::new(),
            username: String::new(),
            role: "user".to_owned(),
            groups: Vec::new(),
            expires_in_days: DEFAULT_EXPIRY_DAYS.to_string(),
            needs_approval: false,
        }
    }
}

impl InviteForm {
    /// The posted fields (`group` repeats, one per ticked box); a group value that is not a
    /// number is reported by the field.
    fn read(fields: Vec<(String, String)>) -> (Self, FieldErrors) {
        let mut form = Self {
            role: String::new(),
            expires_in_days: String::new(),
            ..Self::default()
        };
        let mut errors = FieldErrors::new();
        for (k, v) in fields {
            match k.as_str() {
                "email" => form.email = v,
                "username" => form.username = v,
                "role" => form.role = v,
                "expires_in_days" => form.expires_in_days = v,
                "needs_approval" => form.needs_approval = true,
                "group" => match v.trim().parse::<i64>() {
                    Ok(id) => form.groups.push(id),
                    Err(_) => errors.add("groups", "A group choice is not a group."),
                },
                _ => {}
            }
        }
        (form, errors)
    }

    fn parse(&self, mut errors: FieldErrors) -> Result<NewInvite, FieldErrors> {
        let days = match NewInvite::form_days(&self.expires_in_days) {
            Ok(d) => d,
            Err(e) => {
                errors.merge(e);
                None
            }
        };
        let parsed = NewInvite::parse(InviteFields {
            email: &self.email,
            username: &self.username,
            role: &self.role,
            groups: self.groups.clone(),
            expires_in_days: days,
            needs_approval: self.needs_approval,
        });
        match parsed {
            Ok(new) if errors.is_empty() => Ok(new),
            Ok(_) => Err(errors),
            Err(e) => {
                errors.merge(e);
                Err(errors)
            }
        }
    }
}

/// A group the form offers.
pub struct GroupChoice {
    id: i64,
    name: String,
    checked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/invites.html")]
pub struct InvitesPage {
    layout: Layout,
    invites: Vec<InviteRow>,
    choices: Vec<GroupChoice>,
    form: InviteForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    max_days: i64,
}

impl InvitesPage {
    async fn new(
        (state, session, me): (&AppState, &Session, &CurrentUser),
        form: InviteForm,
        errors: FieldErrors,
        notice: Option<&'static str>,
    ) -> Result<Self, UiError> {
        let now = crate::service::invites::now();
        let rows = invites::list(&state.db).await?;
        let choices = groups::list(&state.db)
            .await?
            .into_iter()
            .map(|g| GroupChoice {
                checked: form.groups.contains(&g.id),
                id: g.id,
                name: g.name,
            })
            .collect();
        Ok(Self {
            layout: Layout::new("Invites", state, session, Some(me)).await?,
            invites: rows.iter().map(|i| InviteRow::new(i, now)).collect(),
            choices,
            form,
            errors,
            notice,
            max_days: MAX_EXPIRY_DAYS,
        })
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    notice: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<InvitesPage, UiError> {
    let notice = match q.notice.as_deref() {
        Some("revoked") => Some("Invite revoked: its link no longer works."),
        _ => None,
    };
    let ctx = (&state, &session, &me);
    InvitesPage::new(ctx, InviteForm::default(), FieldErrors::new(), notice).await
}

/// The new invite's link, shown once.
#[derive(Template, WebTemplate)]
#[template(path = "admin/invite_created.html")]
pub struct CreatedPage {
    layout: Layout,
    link: String,
    row: InviteRow,
    expires: String,
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let (form, errors) = InviteForm::read(fields);
    let result = match form.parse(errors) {
        Ok(new) => invites::create(&state.db, &state.secret, me.actor(&client), new).await,
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    let created = match result {
        Ok(created) => created,
        Err(ServiceError::Validation(errors)) => {
            let page = InvitesPage::new((&state, &session, &me), form, errors, None).await?;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let base = crate::web::sso_flow::public_base(&state, &headers, &client);
    let page = CreatedPage {
        layout: Layout::new("New invite", &state, &session, Some(&me)).await?,
        link: format!("{base}/invite/{}", created.token),
        expires: format_time(created.invite.expires_at),
        row: InviteRow::new(&created.invite, invites::now()),
    };
    let html = page.render().map_err(UiError::internal)?;
    // The link is a way in: never kept by a cache.
    let no_store = [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))];
    Ok((no_store, Html(html)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/invite_revoke.html")]
pub struct RevokePage {
    layout: Layout,
    row: InviteRow,
}

pub async fn confirm_revoke(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
) -> Result<RevokePage, UiError> {
    let invite = invites::get(&state.db, id).await?;
    Ok(RevokePage {
        layout: Layout::new("Revoke invite", &state, &session, Some(&me)).await?,
        row: InviteRow::new(&invite, invites::now()),
    })
}

pub async fn revoke(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    invites::revoke(&state.db, me.actor(&client), id).await?;
    Ok(Redirect::to("/admin/invites?notice=revoked").into_response())
}
