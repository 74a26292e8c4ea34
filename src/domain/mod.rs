//! Pure types and rules: no axum, no diesel. Input is parsed into these types once, at the
//! edge, so the HTML forms and the JSON API share the same rules and the same messages.

mod account;
pub mod api_key;
pub mod apps;
pub mod audit;
pub mod device;
mod errors;
pub mod groups;
pub mod invite;
pub mod passkey;
pub mod policy;
pub mod proxy;
pub mod refusal;
pub mod return_to;
pub mod sso;
pub mod two_factor;
mod user;
pub mod user_list;

pub use account::{Email, Password, Username};
pub use api_key::{ApiKey, NewApiKey};
pub use errors::FieldErrors;
pub use user::{Role, Status, User};
pub use user_list::{ListQuery, Search, SortKey};
