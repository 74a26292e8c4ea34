//! `/admin/lockouts`: the brute-force counters at or past their limit, each with "Lift"
//! (`service::rate_limit`'s `lockouts` and `lift`, the same calls as the JSON API).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Layout, format_time_seconds};
use crate::service::rate_limit::Lockout;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;

/// One row of the table.
pub struct LockoutView {
    id: String,
    action: &'static str,
    client: String,
    /// The account name, "(any account)" for an address's counter.
    account: String,
    failures: u32,
    limit: u32,
    ends: String,
}

impl From<Lockout> for LockoutView {
    fn from(l: Lockout) -> Self {
        let account = match (l.per_account, l.account) {
            (false, _) => "(any account)".to_owned(),
            (true, Some(name)) => name,
            (true, None) => "(name not recorded)".to_owned(),
        };
        Self {
            id: l.id,
            action: l.action,
            client: l.client,
            account,
            failures: l.failures,
            limit: l.limit,
            ends: format_time_seconds(l.ends_at),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/lockouts.html")]
pub struct LockoutsPage {
    layout: Layout,
    lockouts: Vec<LockoutView>,
    notice: Option<&'static str>,
    enabled: bool,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<LockoutsPage, UiError> {
    let lockouts = state.limiter.lockouts().await?;
    Ok(LockoutsPage {
        layout: Layout::new("Lockouts", &state, &session, Some(&admin)).await?,
        lockouts: lockouts.into_iter().map(LockoutView::from).collect(),
        notice: match q.notice.as_deref() {
            Some("lifted") => Some("Lifted: attempts are counted afresh from now on."),
            _ => None,
        },
        enabled: state.config.auth.rate_limit.enabled,
    })
}

pub async fn lift(
    State(state): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    client: Client,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    state.limiter.lift(admin.actor(&client), &id).await?;
    Ok(Redirect::to("/admin/lockouts?notice=lifted").into_response())
}
