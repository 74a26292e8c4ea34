//! `/admin/apps`: the apps Hallpass guards (a table, the add/edit form, removal with a
//! confirmation page) and the rule tester. Every form works without JavaScript; htmx only
//! swaps the tester's answer in place. Reads and writes are `service::apps` functions, the
//! same the JSON API calls.

mod form;

pub use form::{confirm_delete, create, delete, edit_form, new_form, update};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::FieldErrors;
use crate::domain::apps::{Access, AppSource, DefaultPolicy, RuleTest};
use crate::service::ServiceError;
use crate::service::apps::{self, AppView};
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::surface::Surface;
use crate::web::ui::Layout;

/// One row of the app table.
pub struct AppRow {
    pub id: i64,
    pub name: String,
    pub url: Option<String>,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub access: String,
    pub viewers_read_only: bool,
    pub from_file: bool,
}

impl From<&AppView> for AppRow {
    fn from(v: &AppView) -> Self {
        let a = &v.app;
        Self {
            id: a.id,
            name: a.name.clone(),
            url: a.url.clone(),
            hosts: a.hosts.iter().map(ToString::to_string).collect(),
            paths: a.paths.iter().map(ToString::to_string).collect(),
            access: access_summary(v),
            viewers_read_only: a.viewers_read_only,
            from_file: a.source == AppSource::File,
        }
    }
}

/// "Public", "Any signed-in account", "Roles: admin · Groups: family · Users: bob".
pub fn access_summary(v: &AppView) -> String {
    match &v.app.access {
        Access::Public => "Public (no sign-in)".into(),
        Access::SignedIn => "Any signed-in account".into(),
        Access::Restricted { roles, .. } => {
            let mut parts = Vec::new();
            let join = |names: Vec<String>| names.join(", ");
            if !roles.is_empty() {
                parts.push(format!(
                    "Roles: {}",
                    join(roles.iter().map(|r| r.as_str().to_owned()).collect())
                ));
            }
            if !v.groups.is_empty() {
                parts.push(format!(
                    "Groups: {}",
                    join(v.groups.iter().map(|g| g.1.clone()).collect())
                ));
            }
            if !v.users.is_empty() {
                parts.push(format!(
                    "Users: {}",
                    join(v.users.iter().map(|u| u.1.clone()).collect())
                ));
            }
            if parts.is_empty() {
                "Nobody (its groups and users are gone)".into()
            } else {
                parts.join(" · ")
            }
        }
    }
}

/// The tester's form values, problems and answer.
#[derive(Default)]
pub struct Tester {
    pub url: String,
    pub username: String,
    pub method: String,
    pub errors: FieldErrors,
    pub result: Option<RuleTest>,
}

impl Tester {
    /// The CSS modifier of the answer (`allow`, `sign_in`, `deny`).
    fn outcome(&self) -> &'static str {
        self.result.as_ref().map_or("", |r| r.decision.code())
    }

    /// Green for allowed, yellow for a sign-in, red for denied.
    fn alert_class(&self) -> &'static str {
        match self.outcome() {
            "allow" => "alert-success",
            "sign_in" => "alert-warn",
            _ => "alert-error",
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/apps.html")]
pub struct AppsPage {
    layout: Layout,
    rows: Vec<AppRow>,
    notice: Option<&'static str>,
    default_policy: &'static str,
    tester: Tester,
}

/// The tester alone, for htmx.
#[derive(Template, WebTemplate)]
#[template(path = "admin/apps.html", block = "tester")]
pub struct TesterFragment {
    tester: Tester,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageParams {
    #[serde(default)]
    notice: String,
}

fn notice_text(n: &str) -> Option<&'static str> {
    match n {
        "created" => Some("App created. Its rule applies from the next request."),
        "saved" => Some("App saved. Its rule applies from the next request."),
        "deleted" => Some("App removed."),
        _ => None,
    }
}

async fn apps_page(
    state: &AppState,
    session: &Session,
    me: &crate::web::identity::CurrentUser,
    tester: Tester,
) -> Result<AppsPage, UiError> {
    let rows = apps::list(&state.db)
        .await?
        .iter()
        .map(AppRow::from)
        .collect();
    Ok(AppsPage {
        layout: Layout::new("Apps", state, session, Some(me)).await?,
        rows,
        notice: None,
        default_policy: match state.config.auth.forward.default_policy {
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::SignedIn => "signed_in",
        },
        tester,
    })
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Query(params): Query<PageParams>,
) -> Result<AppsPage, UiError> {
    let mut page = apps_page(&state, &session, &me, Tester::default()).await?;
    page.notice = notice_text(&params.notice);
    Ok(page)
}

#[derive(Debug, Default, Deserialize)]
pub struct TestParams {
    #[serde(default)]
    url: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    method: String,
}

/// `GET /admin/apps/test`: the tester's answer, in place (htmx) or on the whole page.
pub async fn tester(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    surface: Surface,
    Query(q): Query<TestParams>,
) -> Result<Response, UiError> {
    let mut tester = Tester {
        url: q.url,
        username: q.username,
        method: q.method,
        ..Tester::default()
    };
    let tested = apps::test_rule(
        &state.db,
        &state.authz,
        &tester.url,
        &tester.username,
        &tester.method,
    );
    let status = match tested.await {
        Ok(result) => {
            tester.result = Some(result);
            StatusCode::OK
        }
        Err(ServiceError::Validation(errors)) => {
            tester.errors = errors;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(e) => return Err(e.into()),
    };
    if surface.is_fragment() {
        // htmx swaps 2xx answers only: the problems are shown by the fields all the same.
        return Ok(TesterFragment { tester }.into_response());
    }
    Ok((status, apps_page(&state, &session, &me, tester).await?).into_response())
}
