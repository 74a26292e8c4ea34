//! `GET /admin/groups` (every group with its member count, and the create form) and
//! `POST /admin/groups` (create, then the new group's page).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{GroupForm, form_errors};
use crate::domain::FieldErrors;
use crate::domain::groups::{Group, GroupInput};
use crate::service::{ServiceError, groups};
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::identity::CurrentUser;
use crate::web::ui::{Layout, format_time};

/// A row of the group table.
pub struct GroupRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub members: i64,
    pub created: String,
}

impl From<Group> for GroupRow {
    fn from(g: Group) -> Self {
        Self {
            id: g.id,
            name: g.name,
            description: g.description.unwrap_or_default(),
            members: g.members,
            created: format_time(g.created_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/groups.html")]
pub struct GroupsPage {
    layout: Layout,
    groups: Vec<GroupRow>,
    form: GroupForm,
    errors: FieldErrors,
    notice: Option<&'static str>,
}

impl GroupsPage {
    async fn new(
        state: &AppState,
        session: &Session,
        me: &CurrentUser,
        (form, errors): (GroupForm, FieldErrors),
        notice: Option<&'static str>,
    ) -> Result<Self, UiError> {
        let groups = groups::list(&state.db).await?;
        Ok(Self {
            layout: Layout::new("Groups", state, session, Some(me)).await?,
            groups: groups.into_iter().map(GroupRow::from).collect(),
            form,
            errors,
            notice,
        })
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    notice: Option<String>,
}

/// The banner after a redirect back to the list.
fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "deleted" => Some("Group deleted."),
        _ => None,
    }
}

pub async fn list(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(q): Query<ListQuery>,
) -> Result<GroupsPage, UiError> {
    let empty = (GroupForm::default(), FieldErrors::new());
    GroupsPage::new(&state, &session, &me, empty, notice(q.notice.as_deref())).await
}

pub async fn create(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    client: Client,
    Form(form): Form<GroupForm>,
) -> Result<Response, UiError> {
    let result = match GroupInput::parse(&form.name, &form.description) {
        Ok(input) => groups::create(&state.db, me.actor(&client), input).await,
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    match result {
        Ok(g) => {
            Ok(Redirect::to(&format!("/admin/groups/{}?notice=created", g.id)).into_response())
        }
        Err(e) => {
            let (status, errors) = form_errors(e)?;
            let page = GroupsPage::new(&state, &session, &me, (form, errors), None).await?;
            Ok((status, page).into_response())
        }
    }
}
