//! Which front end answers a request — a JSON client, a full page, or an htmx fragment and
//! the element it replaces — decided once, by the edge layer, and read by every layer and
//! handler after it (`Surface` is an extractor). The edge layer also sets
//! `Vary: HX-Request` on every page answer, the one place it is set: a cache must not give a
//! fragment to a plain page view or the other way round.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;

/// How a request is to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surface {
    /// `/api/*`: JSON answers, `{"error":{"code","message"}}` for errors.
    Api,
    /// A browser page (also what an htmx history restore gets).
    Page,
    /// An htmx request: a fragment replaces the element named by `target` (`HX-Target`).
    Fragment { target: Option<String> },
}

impl Surface {
    /// Reads it from the path and the htmx headers.
    pub fn of(uri: &Uri, headers: &HeaderMap) -> Self {
        if uri.path().starts_with("/api/") {
            return Surface::Api;
        }
        let is = |name: &str| headers.get(name).is_some_and(|v| v == "true");
        // A history restore wants the whole page back, not the fragment it once swapped.
        if !is("hx-request") || is("hx-history-restore-request") {
            return Surface::Page;
        }
        let target = headers
            .get("hx-target")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Surface::Fragment { target }
    }

    pub fn is_api(&self) -> bool {
        matches!(self, Surface::Api)
    }

    pub fn is_fragment(&self) -> bool {
        matches!(self, Surface::Fragment { .. })
    }

    /// An htmx request that replaces the element with this id.
    pub fn targets(&self, id: &str) -> bool {
        matches!(self, Surface::Fragment { target: Some(t) } if t == id)
    }

    /// The surface the edge layer recorded, or (for a request that did not pass it, such
    /// as a rejection built by axum itself) read again.
    pub fn of_parts(parts: &Parts) -> Self {
        parts
            .extensions
            .get::<Surface>()
            .cloned()
            .unwrap_or_else(|| Surface::of(&parts.uri, &parts.headers))
    }

    /// Whether the edge layer decided that this request is for the JSON API.
    pub fn api_request(extensions: &axum::http::Extensions) -> bool {
        extensions.get::<Surface>().is_some_and(Surface::is_api)
    }

    /// Adds `Vary: HX-Request` to a page or fragment answer (appended: other layers may vary
    /// on other headers).
    pub fn vary(&self, response: &mut Response) {
        if !self.is_api() {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("HX-Request"));
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Surface {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Surface::of_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn decided_from_the_path_and_the_htmx_headers() {
        let api: Uri = "/api/auth/me".parse().unwrap_or_default();
        let page: Uri = "/admin/users".parse().unwrap_or_default();
        assert_eq!(
            Surface::of(&api, &headers(&[("hx-request", "true")])),
            Surface::Api
        );
        assert_eq!(Surface::of(&page, &headers(&[])), Surface::Page);
        let fragment = Surface::of(
            &page,
            &headers(&[("hx-request", "true"), ("hx-target", "user-table")]),
        );
        assert!(fragment.targets("user-table"));
        assert!(!fragment.targets("row-1"));
        let restore = headers(&[
            ("hx-request", "true"),
            ("hx-history-restore-request", "true"),
        ]);
        assert_eq!(Surface::of(&page, &restore), Surface::Page);
    }
}
