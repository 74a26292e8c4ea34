//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the JSON API.
//!
//! Generated, not written: each handler carries `#[utoipa::path]` next to its code, its
//! bodies are its own request and response types (`ToSchema`), and each module of `api`
//! names its handlers in a `Doc`. What is the same for every operation is applied here,
//! once ([`conventions`]): who may call (an API key, or the session cookie, with
//! `X-CSRF-Token` on anything that changes state), and the error body any operation may
//! answer. `tests/http/openapi.rs` compares the document with the router, both ways.
//!
//! Built per request, not kept: it is fetched rarely (a client generator, a Swagger UI), and
//! keeping it would cost every instance memory for nobody (issue 12's idle-memory bound).

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

use crate::web::error::ErrorBody;
use crate::web::session::COOKIE_NAME;

/// The security schemes' names, as operations refer to them.
const BEARER: &str = "api_key";
const BASIC: &str = "api_key_basic";
const COOKIE: &str = "session_cookie";
const CSRF: &str = "csrf_header";
/// The shared response every operation lists as `default`.
const ERROR: &str = "Error";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hallpass",
        description = "The JSON API of Hallpass: the same accounts, rules, messages and audit \
            events as the admin pages, for scripts. Send an API key as `Authorization: Bearer \
            hp_…`, or use the session cookie `POST /api/auth/login` sets; with the cookie, \
            every request that changes something also sends the `csrf_token` of the \
            sign-in answer (or of `GET /api/auth/me`) as `X-CSRF-Token`. Errors are \
            `{\"error\": {\"code\", \"message\"}}` with a 4xx or 5xx status; `code` is stable, \
            `message` is for people.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later")
    ),
    paths(document),
    components(schemas(ErrorBody))
)]
struct Base;

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi_document",
    tag = "api document",
    summary = "This document",
    description = "The OpenAPI 3.1 description of every `/api/` route. Needs no credentials: \
        it describes the published API, nothing of this instance.",
    security(()),
    responses((status = OK, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn document() -> impl IntoResponse {
    // Any origin may read it (a Swagger UI or Redoc served elsewhere): it carries nothing of
    // this instance, and no credentials are sent for it or accepted by it.
    ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(build()))
}

/// The whole document.
pub fn build() -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    // (module, tag, its part). Handler names repeat across modules (`list`, `create`), and
    // client generators need unique operation ids: each is prefixed with its module.
    let parts = [
        ("auth", "auth", super::auth::Doc::openapi()),
        (
            "oidc",
            "sign-in with OpenID Connect",
            super::oidc::Doc::openapi(),
        ),
        ("authz", "forward-auth", crate::web::authz::Doc::openapi()),
        ("users", "users", super::admin_users::Doc::openapi()),
        (
            "two_factor",
            "two-factor",
            super::two_factor::Doc::openapi(),
        ),
        ("passkeys", "passkeys", super::passkeys::Doc::openapi()),
        ("api_keys", "api keys", super::api_keys::Doc::openapi()),
        (
            "sessions",
            "sessions and lockouts",
            super::sessions::Doc::openapi(),
        ),
        ("groups", "groups", super::groups::Doc::openapi()),
        ("invites", "invites", super::invites::Doc::openapi()),
        ("apps", "apps", super::apps::Doc::openapi()),
        ("sso", "single sign-on", super::sso::Doc::openapi()),
        (
            "sso_links",
            "single sign-on",
            super::sso_links::Doc::openapi(),
        ),
        ("proxy", "proxy", super::proxy::Doc::openapi()),
        ("admin", "settings and audit", super::admin::Doc::openapi()),
    ];
    for (module, tag, mut part) in parts {
        for item in part.paths.paths.values_mut() {
            for op in operations(item) {
                op.tags = Some(vec![tag.to_owned()]);
                if let Some(id) = op.operation_id.as_mut() {
                    *id = format!("{module}_{id}");
                }
            }
        }
        doc.merge(part);
    }
    conventions(&mut doc);
    doc
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// What every operation shares: its callers (unless it says otherwise, like the sign-in),
/// and the error body.
fn conventions(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("hp_…")
                .description(Some(
                    "An API key (`/account`, or `POST /api/me/api-keys`). It acts with its \
                     owner's role and status, checked on every request.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        BASIC,
        SecurityScheme::Http(
            Http::builder()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "Forward-auth only, for clients that can send nothing else: an API key as \
                     the password (any username). Never an account's password.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            COOKIE_NAME,
            "The session cookie set by `POST /api/auth/login` (or by the sign-in page).",
        ))),
    );
    components.add_security_scheme(
        CSRF,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "With the session cookie, on every request that changes state: the `csrf_token` \
             of the sign-in answer or of `GET /api/auth/me`.",
        ))),
    );
    components.responses.insert(
        ERROR.to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description(
                    "An error: `{\"error\": {\"code\", \"message\"}}`, and `fields` (each \
                     field's message) when `code` is `VALIDATION_FAILED`. `401 \
                     UNAUTHENTICATED` without credentials, `403` for a role or status that \
                     may not, `429 RATE_LIMITED` with `Retry-After`.",
                )
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        ),
    );
    // An operation written once for several methods (forward-auth answers any) appears
    // under each: its id gets the method appended after the first, to stay unique.
    let mut ids = std::collections::HashSet::new();
    for item in doc.paths.paths.values_mut() {
        for (method, safe, slot) in [
            ("get", true, &mut item.get),
            ("head", true, &mut item.head),
            ("options", true, &mut item.options),
            ("trace", true, &mut item.trace),
            ("put", false, &mut item.put),
            ("post", false, &mut item.post),
            ("delete", false, &mut item.delete),
            ("patch", false, &mut item.patch),
        ] {
            let Some(op) = slot.as_mut() else { continue };
            if op.security.is_none() {
                op.security = Some(callers(safe));
            }
            op.responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR)));
            if let Some(id) = op.operation_id.as_mut()
                && !ids.insert(id.clone())
            {
                id.push('_');
                id.push_str(method);
            }
        }
    }
}

/// An API key, or the session cookie (plus the CSRF header when the request changes state).
fn callers(safe: bool) -> Vec<SecurityRequirement> {
    let none: [&str; 0] = [];
    let cookie = if safe {
        SecurityRequirement::new(COOKIE, none)
    } else {
        SecurityRequirement::new(COOKIE, none).add(CSRF, none)
    };
    vec![SecurityRequirement::new(BEARER, none), cookie]
}

#[cfg(test)]
mod tests {
    /// docs/api.md's table of error codes names every code the code can answer: the codes of
    /// `web::error` and of every `ApiError::new` in `web`.
    #[test]
    fn the_api_docs_name_every_error_code() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs = std::fs::read_to_string(root.join("docs/api.md")).unwrap_or_default();
        let mut codes = std::collections::BTreeSet::new();
        let mut files = vec![root.join("src/web")];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                    files.push(entry.path());
                }
                continue;
            }
            if path.ends_with("openapi.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // In error.rs every upper-case literal is a code; elsewhere, the literals of an
            // `ApiError::new(status, "CODE", …)` call.
            let scopes: Vec<&str> = if path.ends_with("error.rs") {
                vec![&text]
            } else {
                text.split("ApiError::new(")
                    .skip(1)
                    .map(|c| c.split(')').next().unwrap_or(""))
                    .collect()
            };
            for scope in scopes {
                for literal in scope.split('"').skip(1).step_by(2) {
                    let is_code = literal.len() > 2
                        && literal.chars().all(|c| c.is_ascii_uppercase() || c == '_');
                    if is_code {
                        codes.insert(literal.to_owned());
                    }
                }
            }
        }
        assert!(codes.len() > 40, "only {} codes found", codes.len());
        let missing: Vec<_> = codes
            .iter()
            .filter(|c| !docs.contains(&format!("`{c}`")))
            .collect();
        assert!(missing.is_empty(), "docs/api.md lacks {missing:?}");
    }
}
