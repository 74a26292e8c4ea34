//! `/admin/users…`: the user table and its actions. Every action is a plain form (with a
//! confirmation page for destructive ones) and, with JavaScript, an htmx request that swaps
//! just the row. Reads come from `service::users`, rules and messages from `service::admin`,
//! as for the JSON API.
//!
//! `table` renders the list, `row` one row (the fragment htmx swaps), `form` the create and
//! edit forms, `groups` the account's groups on its edit page, `actions` the buttons of a
//! row and their confirmation pages.

mod actions;
mod form;
mod groups;
mod row;
mod rows;
mod table;

pub use actions::{confirm, purge, purge_form, row_action};
pub use form::{create, edit_form, new_form, reset_password, update};
pub use groups::save_groups;
pub use row::row_fragment;
pub use table::table;

use crate::domain::User;
use crate::service::users;
use crate::state::AppState;
use crate::web::error::UiError;

/// The account a page is about, or the 404 page.
async fn load(state: &AppState, id: i64) -> Result<User, UiError> {
    users::get(&state.db, id).await?.ok_or(UiError::NotFound)
}

/// The account a swapped row shows, with its sign-in methods, or the 404 page.
async fn load_row(state: &AppState, id: i64, me: i64) -> Result<row::RowView, UiError> {
    let listed = users::listed(&state.db, id).await?;
    Ok(row::RowView::listed(&listed.ok_or(UiError::NotFound)?, me))
}
