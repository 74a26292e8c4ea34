//! The answers a proxy understands: 200 with `Remote-*` headers, a redirect (or 401) to the
//! sign-in page with `rd`, 403 with a small page, 400 naming the broken header.

use askama::Template;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::forwarded::{Original, Style};
use crate::config::Config;
use crate::domain::Status;
use crate::domain::apps::{Decision, Denied};
use crate::service::authz::{Checked, Person};
use crate::service::{Refusal, ServiceError};
use crate::web::error::ApiError;

const NO_STORE: (HeaderName, HeaderValue) =
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));

pub fn decided(
    config: &Config,
    style: Style,
    headers: &HeaderMap,
    original: &Original,
    checked: Checked,
) -> Response {
    match checked.decision {
        Decision::Allow => allowed(checked.person.as_ref()),
        Decision::SignIn => sign_in(config, style, headers, original),
        Decision::Deny(why) => denied(config, why, checked.refused.as_deref()),
    }
}

/// 200 with the four `Remote-*` headers, empty when nobody is signed in (a public app):
/// a header missing from the answer makes Caddy 2.6's `copy_headers` pass its literal
/// placeholder to the app, and an empty one is dropped by nginx's `proxy_set_header`.
fn allowed(person: Option<&Person>) -> Response {
    let mut response = (StatusCode::OK, [NO_STORE]).into_response();
    let (user, name, email, groups) = match person {
        Some(p) => (
            p.user.username.as_str(),
            p.user.display_name.as_deref().unwrap_or(&p.user.username),
            p.user.email.as_deref().unwrap_or_default(),
            p.groups
                .iter()
                .map(|g| g.1.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        None => ("", "", "", String::new()),
    };
    let h = response.headers_mut();
    for (key, value) in [
        ("remote-user", user),
        ("remote-name", name),
        ("remote-email", email),
        ("remote-groups", groups.as_str()),
    ] {
        // Stored names never hold control characters; UTF-8 passes as header bytes, as
        // Authelia sends it.
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            h.insert(HeaderName::from_static(key), v);
        }
    }
    response
}

/// Anonymous: send the browser to the sign-in page with the original URL in `rd`.
fn sign_in(config: &Config, style: Style, headers: &HeaderMap, original: &Original) -> Response {
    let Some(public) = &config.server.public_url else {
        super::forwarded::log_problem(style, "server.public_url is not set");
        let body =
            "Sign-in required, but Hallpass does not know its own address: set server.public_url.";
        return (StatusCode::UNAUTHORIZED, [NO_STORE], body).into_response();
    };
    let rd: String =
        url::form_urlencoded::byte_serialize(original.url.as_str().as_bytes()).collect();
    let login = format!("{}/login?rd={rd}", public.as_str());
    let Ok(location) = HeaderValue::from_str(&login) else {
        return (StatusCode::UNAUTHORIZED, [NO_STORE]).into_response();
    };
    let browser = is_browser(headers);
    let body = format!("Sign in at {login}");
    let status = match style {
        // nginx cannot pass a redirect through `auth_request`: its `error_page` sends the
        // browser to `Location`; a script's 401 comes without one, so it stays a 401.
        Style::AuthRequest if !browser => {
            return (StatusCode::UNAUTHORIZED, [NO_STORE], body).into_response();
        }
        Style::AuthRequest => StatusCode::UNAUTHORIZED,
        Style::ForwardAuth if !browser => StatusCode::UNAUTHORIZED,
        Style::ForwardAuth if matches!(original.method.as_str(), "GET" | "HEAD") => {
            StatusCode::FOUND
        }
        Style::ForwardAuth => StatusCode::SEE_OTHER,
    };
    (status, [NO_STORE, (header::LOCATION, location)], body).into_response()
}

/// A browser navigating, not a script: scripts get 401 instead of a redirect they would
/// follow into an HTML sign-in page.
fn is_browser(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let xhr = text("x-requested-with").is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
    let html = text("accept").is_some_and(|v| v.contains("text/html"));
    html && !xhr
}

#[derive(Template)]
#[template(path = "authz_denied.html")]
struct DeniedPage<'a> {
    title: &'a str,
    who: Option<&'a str>,
    message: String,
    home: Option<&'a str>,
}

fn denied(config: &Config, why: Denied, who: Option<&str>) -> Response {
    let (title, message) = match why {
        Denied::NotListed => (
            "Not open to you",
            "This app is not open to you. Ask an administrator for access.".to_owned(),
        ),
        Denied::ReadOnly => (
            "Read-only",
            "Viewers may open this app but not change anything in it.".to_owned(),
        ),
        Denied::NoApp => (
            "Unknown app",
            "No app is set up for this address. Ask an administrator to add it on Apps.".to_owned(),
        ),
        Denied::Status(s) => ("Account not active", status_message(s).to_owned()),
    };
    let home = config.server.public_url.as_ref().map(|u| u.as_str());
    let page = DeniedPage {
        title,
        who,
        message,
        home,
    };
    match page.render() {
        Ok(html) => (StatusCode::FORBIDDEN, [NO_STORE], Html(html)).into_response(),
        Err(_) => (StatusCode::FORBIDDEN, [NO_STORE], title.to_owned()).into_response(),
    }
}

fn status_message(s: Status) -> &'static str {
    match s {
        Status::Pending => "Your account is waiting for an administrator's approval.",
        Status::Rejected => "Your registration was not approved.",
        Status::Disabled => "Your account is disabled.",
        Status::Active => "Your account is active.",
    }
}

pub fn bad_request(style: Style, problem: &str) -> Response {
    super::forwarded::log_problem(style, problem);
    let body = format!("Hallpass forward-auth: {problem}. See docs/forward-auth.md.");
    (StatusCode::BAD_REQUEST, [NO_STORE], body).into_response()
}

/// A bad API key is 401 with its challenge (RFC 6750); the rest as the JSON API answers.
pub fn failed(e: ServiceError) -> Response {
    if matches!(e, ServiceError::Refused(Refusal::InvalidApiKey)) {
        let challenge = (
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return ([NO_STORE, challenge], ApiError::from(e)).into_response();
    }
    ([NO_STORE], ApiError::from(e)).into_response()
}
