//! One group's page: `GET /admin/groups/{id}`, its name and description
//! (`POST /admin/groups/{id}`), and its members (`POST …/members` adds one by username,
//! `POST …/members/{user_id}/remove` removes one). With htmx the member forms swap only the
//! `#members` block; without, they redirect back to the page (or re-render it with the
//! message by the field).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{GroupForm, added_by, form_errors};
use crate::domain::groups::{GroupInput, Member};
use crate::domain::{FieldErrors, Status};
use crate::service::ServiceError;
use crate::service::groups::{self, GroupDetail, MemberRef};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::surface::Surface;
use crate::web::ui::{Layout, format_time};

/// A row of the member list.
pub struct MemberRow {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub status: Status,
    pub deleted: bool,
    pub added_by: String,
    pub added: String,
}

impl From<Member> for MemberRow {
    fn from(m: Member) -> Self {
        Self {
            added_by: added_by(&m.source),
            added: format_time(m.added_at),
            user_id: m.user_id,
            username: m.username,
            display_name: m.display_name.unwrap_or_default(),
            status: m.status,
            deleted: m.deleted,
        }
    }
}

/// The member list and its add form: the block htmx swaps.
struct Members {
    id: i64,
    csrf_token: String,
    members: Vec<MemberRow>,
    /// The username typed into the add form (kept when it comes back with an error).
    username: String,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

impl Members {
    fn new(detail: &GroupDetail, csrf_token: String) -> Self {
        Self {
            id: detail.group.id,
            csrf_token,
            members: detail
                .members
                .iter()
                .cloned()
                .map(MemberRow::from)
                .collect(),
            username: String::new(),
            errors: FieldErrors::new(),
            notice: None,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/group.html")]
pub struct GroupPage {
    layout: Layout,
    name: String,
    apps: Vec<String>,
    form: GroupForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
    m: Members,
}

#[derive(Template)]
#[template(path = "admin/group.html", block = "members")]
struct MembersBlock {
    m: Members,
}

impl GroupPage {
    async fn new(
        state: &AppState,
        session: &Session,
        me: &CurrentUser,
        detail: GroupDetail,
    ) -> Result<Self, UiError> {
        let layout = Layout::new(detail.group.name.clone(), state, session, Some(me)).await?;
        let m = Members::new(&detail, layout.csrf_token.text().to_owned());
        Ok(Self {
            name: detail.group.name.clone(),
            form: GroupForm {
                name: detail.group.name,
                description: detail.group.description.unwrap_or_default(),
            },
            apps: detail.apps,
            errors: FieldErrors::new(),
            notice: None,
            layout,
            m,
        })
    }
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("Group created. Add its members below."),
        "saved" => Some("Changes saved."),
        "member_added" => Some("Member added."),
        "member_removed" => Some("Member removed."),
        _ => None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<GroupPage, UiError> {
    let detail = groups::detail(&state.db, id).await?;
    let mut page = GroupPage::new(&state, &session, &me, detail).await?;
    page.notice = notice(q.notice.as_deref());
    Ok(page)
}

/// `POST /admin/groups/{id}`: rename and describe.
pub async fn save(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Path(id): Path<i64>,
    Form(form): Form<GroupForm>,
) -> Result<Response, UiError> {
    let result = match GroupInput::parse(&form.name, &form.description) {
        Ok(input) => groups::update(&state.db, me.actor(&client), id, input).await,
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    let Err(e) = result else {
        return Ok(Redirect::to(&format!("/admin/groups/{id}?notice=saved")).into_response());
    };
    let (status, errors) = form_errors(e)?;
    let mut page =
        GroupPage::new(&state, &session, &me, groups::detail(&state.db, id).await?).await?;
    (page.form, page.errors) = (form, errors);
    Ok((status, page).into_response())
}

#[derive(Deserialize, Default)]
pub struct AddForm {
    #[serde(default)]
    username: String,
}

/// After a member change: the `#members` block for htmx (with `errors` by the field, or
/// `done` as its notice), else the page (errors) or a redirect to it (done).
async fn after_member_change(
    (state, session, me): (&AppState, &Session, &CurrentUser),
    surface: &Surface,
    id: i64,
    result: Result<&'static str, ServiceError>,
    username: String,
) -> Result<Response, UiError> {
    let (status, errors, done) = match result {
        Ok(done) if !surface.is_fragment() => {
            return Ok(Redirect::to(&format!("/admin/groups/{id}?notice={done}")).into_response());
        }
        Ok(done) => (StatusCode::OK, FieldErrors::new(), Some(done)),
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            (status, errors, None)
        }
    };
    let detail = groups::detail(&state.db, id).await?;
    let mut page = GroupPage::new(state, session, me, detail).await?;
    page.m.notice = notice(done);
    if !errors.is_empty() {
        page.m.username = username;
    }
    page.m.errors = errors;
    if surface.is_fragment() {
        // 200 even with errors: htmx swaps only successful answers by default.
        let html = MembersBlock { m: page.m }
            .render()
            .map_err(UiError::internal)?;
        return Ok(Html(html).into_response());
    }
    Ok((status, page).into_response())
}

pub async fn add_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path(id): Path<i64>,
    Form(form): Form<AddForm>,
) -> Result<Response, UiError> {
    let who = MemberRef::Username(form.username.clone());
    let result = groups::add_member(&state.db, me.actor(&client), id, who).await;
    let result = result.map(|_| "member_added");
    after_member_change((&state, &session, &me), &surface, id, result, form.username).await
}

pub async fn remove_member(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    surface: Surface,
    Path((id, user_id)): Path<(i64, i64)>,
) -> Result<Response, UiError> {
    // Not a member (or no such group): the error page, not a message by the add form.
    groups::remove_member(&state.db, me.actor(&client), id, user_id).await?;
    let done = Ok("member_removed");
    after_member_change((&state, &session, &me), &surface, id, done, String::new()).await
}
