//! Error pages (403, 404, 500…), without internals, and with the navigation of whoever is
//! signed in, so that a wrong turn never strands anyone (the way home and Sign out stay).
//!
//! An error is often rendered where the caller is not at hand (`UiError::into_response`,
//! an extractor's rejection, the fallback). So [`render`] draws the page bare and marks the
//! response with [`ErrorPage`]; the gates, which know the caller, then call
//! [`with_navigation`] to draw it again with the navigation.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use tower_sessions::Session;

use super::Layout;
use crate::state::AppState;
use crate::web::identity::{CurrentUser, Identity};
use crate::web::surface::Surface;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    layout: Layout,
    status: u16,
    message: &'a str,
}

/// What an error page said, kept on its response to draw it again with the navigation.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    title: String,
    message: String,
}

pub fn render(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorTemplate {
        layout: Layout::bare(title),
        status: status.as_u16(),
        message,
    };
    let mut response = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            return (status, message.to_owned()).into_response();
        }
    };
    response.extensions_mut().insert(ErrorPage {
        title: title.to_owned(),
        message: message.to_owned(),
    });
    response
}

/// The signed-in caller of a full page request, whose error page would show the
/// navigation (`None` for the API, htmx fragments and anonymous callers: nothing to add).
pub fn caller_of_page(req: &Request) -> Option<CurrentUser> {
    if !matches!(req.extensions().get::<Surface>(), Some(Surface::Page)) {
        return None;
    }
    req.extensions().get::<Identity>()?.0.clone()
}

/// `response` again with `caller`'s navigation when it is an error page drawn bare; any
/// other response as it is. The status and headers (`Retry-After`…) stay.
pub async fn with_navigation(
    state: &AppState,
    session: &Session,
    caller: Option<CurrentUser>,
    response: Response,
) -> Response {
    let (Some(caller), Some(page)) = (caller, response.extensions().get::<ErrorPage>()) else {
        return response;
    };
    let page = page.clone();
    let Ok(layout) = Layout::new(page.title, state, session, Some(&caller)).await else {
        return response;
    };
    let status = response.status();
    let html = ErrorTemplate {
        layout,
        status: status.as_u16(),
        message: &page.message,
    }
    .render();
    match html {
        Ok(html) => {
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, Body::from(html))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            response
        }
    }
}
