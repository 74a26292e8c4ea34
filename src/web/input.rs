//! Refuses text that no field of Hallpass can use, at the edge, for every route: path
//! parameters, query parameters, url-encoded form fields and JSON strings (values and keys).
//!
//! Why here and not in each handler: PostgreSQL cannot store NUL at all (`invalid byte
//! sequence for encoding "UTF8": 0x00`), so a NUL that reached a query became a 500 on
//! PostgreSQL and a harmless miss on SQLite; checking once, before any handler, session
//! lookup or rate limiter, gives both databases the same clear 400 naming the field, and no
//! new field can forget it. Handlers keep their own validation (lengths, formats).
//!
//! The rule, by field class:
//! - **Secrets** (a field name containing `password` or `secret`): only NUL is refused.
//!   They are hashed or encrypted, never stored as text nor shown, and refusing more could
//!   lock out a password set earlier through the API with a tab in it.
//! - **Everything else** (names, emails, ids, search terms, URLs, tokens): every control
//!   character (Unicode `Cc`: U+0000–U+001F, U+007F–U+009F), tab and newlines included: no
//!   such field is multi-line, except the text areas listed in [`MULTILINE_FORM_FIELDS`]
//!   (one entry per line), which also allow CR and LF.
//! - Everywhere: text that is not valid UTF-8 once percent-decoded (`%FF`), which the form and
//!   query extractors would otherwise turn silently into U+FFFD.

use std::borrow::Cow;

use axum::Json;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::UiError;

/// The API error code of every refusal made here.
pub const CODE: &str = "INVALID_INPUT";

/// Where a refused field came from; it decides how the message names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Path,
    Query,
    Form,
    Json,
}

/// What is wrong with the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The value contains this control character.
    Control(char),
    /// The field's name contains this control character.
    ControlInName(char),
    /// The value is not UTF-8 once percent-decoded.
    NotUtf8,
}

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub place: Place,
    /// The field's name as sent (JSON: a path such as `user.name` or `groups[2]`).
    pub field: String,
    pub problem: Problem,
}

impl Refusal {
    fn new(place: Place, field: impl Into<String>, problem: Problem) -> Self {
        Self {
            place,
            field: field.into(),
            problem,
        }
    }

    /// The field's name fit for a message: control characters escaped, long names cut.
    pub fn shown_field(&self) -> String {
        let escaped: String = self.field.escape_debug().collect();
        match escaped.char_indices().nth(64) {
            Some((cut, _)) => format!("{}…", &escaped[..cut]),
            None => escaped,
        }
    }

    /// The sentence the client reads; it always names the field.
    pub fn message(&self) -> String {
        let field = self.shown_field();
        let subject = match self.place {
            Place::Path => format!("The \"{field}\" part of the address"),
            Place::Query => format!("The query parameter \"{field}\""),
            Place::Form | Place::Json => format!("The field \"{field}\""),
        };
        match self.problem {
            Problem::Control(c) => format!(
                "{subject} contains a control character ({}), which Hallpass does not accept. \
                 Remove it and try again.",
                code_point(c)
            ),
            Problem::ControlInName(c) => format!(
                "The name of {} contains a control character ({}), which Hallpass does not \
                 accept.",
                subject.replacen("The ", "the ", 1),
                code_point(c)
            ),
            Problem::NotUtf8 => format!("{subject} is not valid UTF-8 text."),
        }
    }
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Form fields that are `<textarea>`s of one entry per line (`/admin/apps`: host patterns,
/// path prefixes, groups, users): line breaks are their separators.
pub const MULTILINE_FORM_FIELDS: &[&str] = &["hosts", "paths", "groups", "users"];

/// How strict the check is for one field (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Secret,
    Text,
    /// Text that may span lines.
    Lines,
}

impl Class {
    fn of(place: Place, name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        if name.contains("password") || name.contains("secret") {
            Class::Secret
        } else if place == Place::Form && MULTILINE_FORM_FIELDS.contains(&name.as_str()) {
            Class::Lines
        } else {
            Class::Text
        }
    }

    /// The first character this class refuses in `value`.
    fn refused_in(self, value: &str) -> Option<char> {
        match self {
            Class::Secret => value.contains('\0').then_some('\0'),
            Class::Text => value.chars().find(|c| c.is_control()),
            Class::Lines => value
                .chars()
                .find(|c| c.is_control() && !matches!(c, '\r' | '\n')),
        }
    }
}

/// Checks one named value; field names themselves must be free of control characters.
fn check_field(place: Place, name: &str, value: &str) -> Result<(), Refusal> {
    if let Some(c) = Class::Text.refused_in(name) {
        return Err(Refusal::new(place, name, Problem::ControlInName(c)));
    }
    match Class::of(place, name).refused_in(value) {
        Some(c) => Err(Refusal::new(place, name, Problem::Control(c))),
        None => Ok(()),
    }
}

/// Percent-decodes one part of `application/x-www-form-urlencoded` text (`+` is a space).
fn decode_part(raw: &[u8]) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let decoded = percent_encoding::percent_decode(&spaced).decode_utf8()?;
        Ok(Cow::Owned(decoded.into_owned()))
    } else {
        percent_encoding::percent_decode(raw).decode_utf8()
    }
}

/// Checks every `name=value` pair of a query string or a url-encoded body.
pub fn check_urlencoded(place: Place, raw: &[u8]) -> Result<(), Refusal> {
    for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_part(name)
            .map_err(|_| Refusal::new(place, String::from_utf8_lossy(name), Problem::NotUtf8))?;
        let value =
            decode_part(value).map_err(|_| Refusal::new(place, name.as_ref(), Problem::NotUtf8))?;
        check_field(place, &name, &value)?;
    }
    Ok(())
}

/// Walks a JSON document: every key, and every string under its nearest key.
pub fn check_json(value: &Value) -> Result<(), Refusal> {
    fn walk(value: &Value, path: &mut String, key: &str) -> Result<(), Refusal> {
        match value {
            Value::String(s) => match Class::of(Place::Json, key).refused_in(s) {
                Some(c) => Err(Refusal::new(Place::Json, path.clone(), Problem::Control(c))),
                None => Ok(()),
            },
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, key)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(map) => {
                for (k, v) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if let Some(c) = Class::Text.refused_in(k) {
                        return Err(Refusal::new(
                            Place::Json,
                            path.clone(),
                            Problem::ControlInName(c),
                        ));
                    }
                    walk(v, path, k)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(value, &mut String::new(), "")
}

/// Whether the edge layer decided this request is for the JSON API.
fn is_api(req: &Request) -> bool {
    super::surface::Surface::api_request(req.extensions())
}

/// The address check: path parameters and the query string. Run by `edge::check`, after
/// routing (it needs the route's path parameters) and before the session, identity and CSRF
/// layers, so a refused request costs no database work. Bodies: [`check_body_then`].
pub fn address_refusal(
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: &Request,
    api: bool,
) -> Option<Response> {
    match params {
        Ok(params) => {
            for (name, value) in &params {
                if let Err(r) = check_field(Place::Path, name, value) {
                    return Some(refuse(api, &r));
                }
            }
        }
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(e)) => {
            return Some(refuse_message(
                api,
                format!("The address is not valid: {}.", e.body_text()),
            ));
        }
        // A route without parameters (or the fallback).
        Err(_) => {}
    }
    if let Some(query) = req.uri().query()
        && let Err(r) = check_urlencoded(Place::Query, query.as_bytes())
    {
        return Some(refuse(api, &r));
    }
    None
}

/// API routes that anonymous callers may send a body to.
const ANONYMOUS_API_WRITES: &[&str] = &["/api/auth/login"];

/// The body check: called by the CSRF check once it passed (the last check before the
/// handlers), so a request that will be refused anyway (an anonymous call to a signed-in API
/// route, a forged form) is refused without waiting for its body — a client that announced a
/// body it never sends, or holds it back behind `Expect: 100-continue`, is told at once.
/// `Ok`: the request, its body read and checked; `Err`: the refusal.
pub async fn check_body(body_limit: usize, req: Request) -> Result<Request, Response> {
    // Safe methods carry no body any handler reads: the hot path stops here.
    if req.method().is_safe() {
        return Ok(req);
    }
    let api = is_api(&req);
    let anonymous = req
        .extensions()
        .get::<super::identity::Identity>()
        .is_none_or(|i| i.0.is_none());
    if api && anonymous && !ANONYMOUS_API_WRITES.contains(&req.uri().path()) {
        // The handler answers 401 before reading anything.
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, body_limit).await else {
        return Err(too_large(api));
    };
    if let Err(r) = check_body_text(&parts.headers, &bytes) {
        return Err(refuse(api, &r));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A url-encoded body is checked field by field; anything else that parses as JSON is
/// walked (one API route reads its JSON body whatever the `Content-Type`); other bodies
/// are left to the handlers' extractors, which refuse them.
fn check_body_text(headers: &axum::http::HeaderMap, bytes: &Bytes) -> Result<(), Refusal> {
    if bytes.is_empty() {
        return Ok(());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if form {
        return check_urlencoded(Place::Form, bytes);
    }
    let looks_json = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| matches!(b, b'{' | b'['));
    if looks_json && let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        return check_json(&value);
    }
    Ok(())
}

fn refuse(api: bool, refusal: &Refusal) -> Response {
    tracing::debug!(field = %refusal.shown_field(), place = ?refusal.place, problem = ?refusal.problem, "refused input");
    if api {
        let body = json!({
            "error": { "code": CODE, "message": refusal.message(), "field": refusal.field }
        });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    } else {
        UiError::BadRequest(refusal.message()).into_response()
    }
}

fn refuse_message(api: bool, message: String) -> Response {
    if api {
        let body = json!({ "error": { "code": CODE, "message": message } });
        (StatusCode::BAD_REQUEST, Json(body)).into_response()
    } else {
        UiError::BadRequest(message).into_response()
    }
}

fn too_large(api: bool) -> Response {
    let message = "The request body is larger than this server accepts (server.body_limit).";
    if api {
        let body = json!({ "error": { "code": "PAYLOAD_TOO_LARGE", "message": message } });
        (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
    } else {
        super::ui::errors::render(StatusCode::PAYLOAD_TOO_LARGE, "Request too large", message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn form(raw: &str) -> Result<(), Refusal> {
        check_urlencoded(Place::Form, raw.as_bytes())
    }

    #[test]
    fn nul_is_refused_in_every_field_and_named() {
        let r = form("csrf_token=x&username=alice%00&password=pw").unwrap_err();
        assert_eq!(r.field, "username");
        assert_eq!(r.problem, Problem::Control('\0'));
        assert!(r.message().contains("\"username\""), "{}", r.message());
        let r = form("username=alice&password=pw%00").unwrap_err();
        assert_eq!(r.field, "password");
    }

    #[test]
    fn secrets_refuse_only_nul() {
        assert!(form("new_password=a%09b%01c&client_secret=%1B").is_ok());
        assert_eq!(
            form("display_name=a%09b").unwrap_err().problem,
            Problem::Control('\t')
        );
        assert_eq!(
            form("q=a%C2%85").unwrap_err().problem,
            Problem::Control('\u{85}')
        );
    }

    #[test]
    fn text_areas_take_line_breaks_and_nothing_else() {
        assert!(form("hosts=a.example.com%0D%0Ab.example.com&paths=%2Fa%0A%2Fb").is_ok());
        assert_eq!(form("hosts=a%09b").unwrap_err().field, "hosts");
        assert_eq!(form("hosts=a%00b").unwrap_err().field, "hosts");
        assert_eq!(form("name=a%0Ab").unwrap_err().field, "name");
    }

    #[test]
    fn plain_text_passes_and_plus_is_a_space() {
        assert!(form("username=J%C3%B6rg+M%C3%BCller&email=a%2Bb%40example.com&x").is_ok());
        assert!(form("").is_ok());
        assert!(form("&&a=&=b").is_ok());
    }

    #[test]
    fn invalid_utf8_and_control_names_are_refused() {
        let r = form("username=%FF").unwrap_err();
        assert_eq!(
            (r.field.as_str(), r.problem),
            ("username", Problem::NotUtf8)
        );
        let r = form("user%00name=x").unwrap_err();
        assert_eq!(r.problem, Problem::ControlInName('\0'));
        assert!(r.message().contains("user\\0name"), "{}", r.message());
    }

    #[test]
    fn json_strings_and_keys_are_walked_with_their_path() {
        let v: Value =
            serde_json::from_str(r#"{"a":{"b":["ok","x\u0000"]},"password":"p\t"}"#).unwrap();
        let r = check_json(&v).unwrap_err();
        assert_eq!(r.field, "a.b[1]");
        let v: Value = serde_json::from_str(r#"{"password":"p\t","n":1,"k\u0001":2}"#).unwrap();
        let r = check_json(&v).unwrap_err();
        assert_eq!(
            (r.field.as_str(), r.problem),
            ("k\u{1}", Problem::ControlInName('\u{1}'))
        );
        let v: Value = serde_json::from_str(r#"{"current_password":"a\u0000"}"#).unwrap();
        assert_eq!(check_json(&v).unwrap_err().field, "current_password");
    }

    #[test]
    fn long_names_are_cut_in_messages() {
        let r = Refusal::new(Place::Query, "n".repeat(500), Problem::NotUtf8);
        assert!(r.message().len() < 200);
    }
}
