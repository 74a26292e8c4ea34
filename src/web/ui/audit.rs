//! `/admin/audit`: the audit log, newest first, filtered by user and action, 50 per page.
//!
//! One template serves both ways in: a plain GET form (full page) and htmx (`HX-Request`:
//! only the `results` block, the table and its pager, rendered from the same markup).

use crate::web::surface::Surface;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::{Layout, format_time_seconds};
use crate::service::audit::{self, AuditParams, Event, KNOWN_ACTIONS};
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;

/// One row of the table.
pub struct EventView {
    id: i64,
    time: String,
    actor: String,
    action: String,
    target: String,
    ip: String,
    outcome: String,
    detail: String,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            id: e.id,
            time: format_time_seconds(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target.unwrap_or_default(),
            ip: e.ip.unwrap_or_default(),
            outcome: e.outcome,
            detail: e.detail.unwrap_or_default(),
        }
    }
}

/// One choice of the action filter.
pub struct ActionOption {
    value: String,
    label: String,
    selected: bool,
}

/// What the filter form and the results block show.
pub struct AuditView {
    user: String,
    actions: Vec<ActionOption>,
    events: Vec<EventView>,
    /// Link to the next (older) page, with the filters.
    older: Option<String>,
    /// Link back to the newest page, when this is not it.
    newest: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html")]
pub struct AuditPage {
    layout: Layout,
    view: AuditView,
}

/// The htmx fragment: the `results` block of the same template.
#[derive(Template, WebTemplate)]
#[template(path = "admin/audit.html", block = "results")]
pub struct AuditResults {
    view: AuditView,
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    surface: Surface,
    Query(params): Query<AuditParams>,
) -> Result<Response, UiError> {
    let q = params
        .to_query()
        .map_err(|m| UiError::BadRequest(m.to_owned()))?;
    let page = audit::page(&state.db, &q).await?;
    let view = AuditView {
        user: q.user.clone(),
        actions: action_options(q.action.trim()),
        events: page.events.into_iter().map(EventView::from).collect(),
        older: page.next.map(|id| link(&q, Some(id))),
        newest: q.before.map(|_| link(&q, None)),
    };
    let response = if surface.is_fragment() {
        AuditResults { view }.into_response()
    } else {
        let layout = Layout::new("Audit log", &state, &session, Some(&me)).await?;
        AuditPage { layout, view }.into_response()
    };
    // The same URL answers a page or a fragment: the edge layer adds `Vary: HX-Request`.
    Ok(response)
}

/// `/admin/audit?…` with the current filters and an optional cursor.
fn link(q: &audit::Query, before: Option<i64>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.user.trim().is_empty() {
        s.append_pair("user", q.user.trim());
    }
    if !q.action.trim().is_empty() {
        s.append_pair("action", q.action.trim());
    }
    if let Some(id) = before {
        s.append_pair("before", &id.to_string());
    }
    let qs = s.finish();
    if qs.is_empty() {
        "/admin/audit".to_owned()
    } else {
        format!("/admin/audit?{qs}")
    }
}

/// The known actions, plus the current value when it came from a hand-written URL.
fn action_options(current: &str) -> Vec<ActionOption> {
    let label = |a: &str| {
        if a.ends_with('.') {
            format!("{a}* (all)")
        } else {
            a.to_owned()
        }
    };
    let mut options: Vec<ActionOption> = KNOWN_ACTIONS
        .iter()
        .map(|a| ActionOption {
            value: (*a).to_owned(),
            label: label(a),
            selected: *a == current,
        })
        .collect();
    if !current.is_empty() && !KNOWN_ACTIONS.contains(&current) {
        options.push(ActionOption {
            value: current.to_owned(),
            label: label(current),
            selected: true,
        });
    }
    options
}
