//! `/admin/groups…`: the group list with its create form (`list`), one group's page with
//! its name, description and members (`group`; with htmx, adding and removing a member
//! swaps only the member list), and the confirmation before a delete (`delete`). Every form
//! works without JavaScript. Reads and writes are `service::groups`, as for the JSON API.

mod delete;
mod group;
mod list;

pub use delete::{confirm_delete, delete};
pub use group::{add_member, page, remove_member, save};
pub use list::{create, list};

use crate::domain::FieldErrors;
use crate::service::{Missing, Refusal, ServiceError};

/// The form values of a group (kept when the form comes back with errors).
#[derive(serde::Deserialize, Default, Clone)]
pub struct GroupForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// The messages a group form shows by its fields for `e`, with the status of the answer;
/// `None` for errors that get their own page.
fn form_errors(e: ServiceError) -> Result<(axum::http::StatusCode, FieldErrors), ServiceError> {
    let status = crate::web::error::answer(&e).0;
    match e {
        ServiceError::Validation(errors) => Ok((status, errors)),
        ServiceError::Refused(r @ Refusal::GroupNameTaken(_)) => {
            Ok((status, FieldErrors::single("name", r.to_string())))
        }
        // Adding a member: the account named is unknown, deleted or a member already.
        ServiceError::Refused(Refusal::NotFound(Missing::Account)) => Ok((
            status,
            FieldErrors::single("username", "No account has this username."),
        )),
        ServiceError::Refused(r @ (Refusal::AccountDeleted(_) | Refusal::AlreadyMember(_))) => {
            Ok((status, FieldErrors::single("username", r.to_string())))
        }
        other => Err(other),
    }
}

/// Who made a membership, as the member list says it.
fn added_by(source: &str) -> String {
    match source {
        crate::domain::groups::ADMIN_SOURCE => "an administrator".to_owned(),
        crate::domain::sso::PROXY_PROVIDER => "the proxy's groups header".to_owned(),
        provider => format!("the groups claim of {provider}"),
    }
}
