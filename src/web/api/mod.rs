//! The JSON API. Errors are `{"error": {"code", "message"}}` with a 4xx/5xx status.

pub mod admin;
pub mod admin_users;
pub mod api_keys;
pub mod apps;
pub mod auth;
pub mod groups;
pub mod invites;
pub mod oidc;
pub mod openapi;
pub mod passkeys;
pub mod proxy;
pub mod sessions;
pub mod sso;
pub mod sso_links;
pub mod two_factor;

use axum::extract::{FromRequest, FromRequestParts};

use super::error::ApiError;

/// `axum::Json` whose rejections answer in the API's error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` whose rejections answer in the API's error format: an id that does
/// not parse (`/api/admin/groups/abc`) names nothing, so `404 NOT_FOUND` as JSON rather than
/// axum's plain-text 400.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);
