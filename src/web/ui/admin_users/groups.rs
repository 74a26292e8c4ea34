//! The groups of an account on its edit page: a checkbox per group, saved by their own small
//! form (`POST /admin/users/{id}/groups`), so the inline row editor and the profile form
//! never touch memberships.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use crate::service::groups;
use crate::state::AppState;
use crate::web::client::Client;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;

/// One checkbox of the list.
pub struct GroupChoice {
    pub id: i64,
    pub name: String,
    pub checked: bool,
    /// Who made the membership, when a sign-in's groups claim did (it refreshes it).
    pub claim: Option<String>,
}

/// Every group, ticked where account `user_id` is a member.
pub(super) async fn choices(state: &AppState, user_id: i64) -> Result<Vec<GroupChoice>, UiError> {
    let all = groups::list(&state.db).await?;
    let mine = groups::memberships_of(&state.db, user_id).await?;
    Ok(all
        .into_iter()
        .map(|g| {
            let source = mine.iter().find(|(id, _)| *id == g.id).map(|(_, s)| s);
            GroupChoice {
                id: g.id,
                name: g.name,
                checked: source.is_some(),
                claim: source
                    .filter(|s| s.as_str() != crate::domain::groups::ADMIN_SOURCE)
                    .cloned(),
            }
        })
        .collect())
}

/// `POST /admin/users/{id}/groups`: the ticked `group` boxes (repeated field) become the
/// account's groups.
pub async fn save_groups(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    client: Client,
    Path(id): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let wanted = fields
        .iter()
        .filter(|(k, _)| k == "group")
        .map(|(_, v)| v.trim().parse::<i64>())
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|_| UiError::BadRequest("A group choice is not a group id.".into()))?;
    groups::set_user_groups(&state.db, me.actor(&client), id, wanted).await?;
    Ok(Redirect::to("/admin/users?notice=groups_saved").into_response())
}
