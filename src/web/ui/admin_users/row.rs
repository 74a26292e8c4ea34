//! One row of the user table: its view model, and the fragment htmx swaps in place.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use tower_sessions::Session;

use super::load_row;
use crate::domain::sso::PROXY_PROVIDER;
use crate::domain::{Role, Status, User};
use crate::service::users::ListedUser;
use crate::state::AppState;
use crate::web::error::UiError;
use crate::web::guards::RequireAdmin;
use crate::web::ui::{Escaped, format_time};
use crate::web::user_list::ListParams;

/// What a row shows of its account, the same for every admin: built once per kept page of
/// the table (`UserPage::derived`) and shared by the requests that show it.
pub struct Row {
    pub id: i64,
    // Escaped once: the template writes the username six times a row.
    pub username: Escaped,
    pub display_name: Escaped,
    pub email: Escaped,
    pub role: Role,
    pub status: Status,
    pub deleted: bool,
    pub created: Escaped,
    pub last_login: Escaped,
    pub methods: Escaped,
}

/// A row as one admin sees it: the [`Row`] (its fields read through `Deref`), whether it is
/// the admin's own account, and why an action on it was refused.
pub struct RowView {
    row: Arc<Row>,
    pub is_self: bool,
    pub error: Option<String>,
}

impl std::ops::Deref for RowView {
    type Target = Row;

    fn deref(&self) -> &Row {
        &self.row
    }
}

impl RowView {
    /// `row` as admin `me` sees it.
    pub(super) fn of(row: Arc<Row>, me: i64) -> Self {
        Self {
            is_self: row.id == me,
            row,
            error: None,
        }
    }

    /// `row` as any admin but its own account sees it.
    pub(super) fn anyones(row: Arc<Row>) -> Self {
        Self {
            is_self: false,
            row,
            error: None,
        }
    }

    /// The row of one account.
    pub(super) fn listed(l: &ListedUser, me: i64) -> Self {
        Self::of(Arc::new(Row::listed(l)), me)
    }
}

impl Row {
    /// A row of the full table, which knows every sign-in method of the account.
    pub(super) fn listed(l: &ListedUser) -> Self {
        let mut methods = String::new();
        let mut add = |method: &str| {
            if !methods.is_empty() {
                methods.push_str(", ");
            }
            methods.push_str(method);
        };
        if l.user.password_hash.is_some() {
            add("password");
        }
        for provider in &l.providers {
            if provider == PROXY_PROVIDER {
                add("forward-auth proxy");
            } else {
                add(&format!("SSO ({provider})"));
            }
        }
        match l.api_keys {
            0 => {}
            1 => add("1 API key"),
            n => add(&format!("{n} API keys")),
        }
        let mut row = Self::new(&l.user);
        if !methods.is_empty() {
            row.methods = Escaped::text(&methods);
        }
        row
    }

    /// The row without its methods beyond the password ([`RowView::listed`] adds them).
    fn new(u: &User) -> Self {
        Self {
            id: u.id,
            username: Escaped::text(&u.username),
            display_name: Escaped::text(u.display_name.as_deref().unwrap_or_default()),
            email: Escaped::text(u.email.as_deref().unwrap_or_default()),
            role: u.role,
            status: u.status,
            deleted: u.deleted_at.is_some(),
            created: Escaped::text(&format_time(u.created_at)),
            last_login: Escaped::text(
                &u.last_login_at
                    .map_or_else(|| "never".to_owned(), format_time),
            ),
            methods: Escaped::text(if u.password_hash.is_some() {
                "password"
            } else {
                "none"
            }),
        }
    }
}

/// A line in the page's message area: what an action did, or why it was refused.
pub struct Message {
    /// `success` or `error` (the alert's style; an error is announced at once).
    pub kind: &'static str,
    pub text: String,
}

impl Message {
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            kind: "success",
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error",
            text: text.into(),
        }
    }
}

/// `back` percent-encoded for the rows' `?back=` links, once a page: encoded in the template,
/// a filtered page encoded it four times a row (~35k instructions of a 50-row page,
/// bench/README.md). The result is HTML-safe (letters, digits, `%` and `_.-~/` only), which
/// is why the rows may write it with `|safe`.
pub(super) fn back_url(back: &str) -> String {
    askama::filters::urlencode(back)
        .map(|encoded| encoded.to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin/row_fragment.html", whitespace = "minimize")]
struct RowFragment {
    u: RowView,
    csrf_token: Escaped,
    back: Escaped,
    /// [`back_url`] of `back`.
    back_url: String,
    /// Swapped out of band into the page's message area.
    message: Option<Message>,
    /// Swapped out of band into the header's count of accounts awaiting approval.
    pending: Option<i64>,
}

/// What a swapped row brings besides itself.
#[derive(Default)]
pub(super) struct Extras {
    pub back: String,
    pub message: Option<Message>,
    /// Refresh the header's count of pending accounts (an action changed a status).
    pub pending: Option<i64>,
}

/// Renders one row as the fragment htmx swaps in.
pub(super) fn fragment(
    row: RowView,
    csrf_token: String,
    extras: Extras,
) -> Result<Response, UiError> {
    let html = RowFragment {
        u: row,
        csrf_token: Escaped::text(&csrf_token),
        back_url: back_url(&extras.back),
        back: Escaped::text(&extras.back),
        message: extras.message,
        pending: extras.pending,
    }
    .render()
    .map_err(UiError::internal)?;
    Ok(Html(html).into_response())
}

/// The current row of account `id`, as a fragment.
pub(super) async fn current(
    state: &AppState,
    session: &Session,
    me: i64,
    id: i64,
    extras: Extras,
) -> Result<Response, UiError> {
    let row = load_row(state, id, me).await?;
    let csrf_token = crate::web::session::csrf_token(session).await?;
    fragment(row, csrf_token, extras)
}

/// `?back=`: the view of the table a page or row was opened from.
#[derive(serde::Deserialize, Default)]
pub struct Back {
    #[serde(default)]
    pub back: String,
}

/// `GET /admin/users/{id}/row`: one row (htmx "Cancel" of an inline edit).
pub async fn row_fragment(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    session: Session,
    Path(id): Path<i64>,
    Query(back): Query<Back>,
) -> Result<Response, UiError> {
    let extras = Extras {
        back: ListParams::from_query_string(&back.back).query_string(),
        ..Extras::default()
    };
    current(&state, &session, me.user.id, id, extras).await
}
