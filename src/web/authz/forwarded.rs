//! The request a proxy asks about, read from its forwarding headers: the Traefik/Caddy
//! style (`X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri`) and the nginx style
//! (`X-Original-URL`, `X-Original-Method`), as Authelia reads them.

use std::sync::atomic::{AtomicI64, Ordering};

use axum::http::{HeaderMap, HeaderName};

// Names as constants: a `&str` name is parsed and checked again on every lookup.
const FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");

/// Which header style an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `/api/authz/forward-auth`.
    ForwardAuth,
    /// `/api/authz/auth-request`.
    AuthRequest,
}

/// The protected request.
#[derive(Debug, Clone)]
pub struct Original {
    /// Upper case.
    pub method: String,
    pub url: url::Url,
    /// Lower case, without port.
    pub host: String,
}

/// The first thing wrong with the forwarding headers, worded for whoever sets up the proxy.
pub type Problem = String;

pub fn read(style: Style, headers: &HeaderMap) -> Result<Original, Problem> {
    let (method, url) = match style {
        Style::ForwardAuth => {
            let method = header(headers, &FORWARDED_METHOD)?;
            let proto = first(header(headers, &FORWARDED_PROTO)?).to_ascii_lowercase();
            let host = first(header(headers, &FORWARDED_HOST)?);
            let uri = header(headers, &FORWARDED_URI)?;
            if !matches!(proto.as_str(), "http" | "https") {
                return Err(format!(
                    "X-Forwarded-Proto is {proto:?}; expected http or https"
                ));
            }
            if !uri.starts_with('/') {
                return Err(format!("X-Forwarded-Uri {uri:?} does not start with /"));
            }
            let url = url::Url::parse(&format!("{proto}://{host}{uri}")).map_err(|e| {
                format!("X-Forwarded-Host {host:?} and X-Forwarded-Uri do not make a URL ({e})")
            })?;
            (method, url)
        }
        Style::AuthRequest => {
            let method = header(headers, &ORIGINAL_METHOD)?;
            let raw = header(headers, &ORIGINAL_URL)?;
            let url = url::Url::parse(raw)
                .map_err(|e| format!("X-Original-URL {raw:?} is not an absolute URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("X-Original-URL {raw:?} is not an http(s) URL"));
            }
            (method, url)
        }
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "the forwarded method {method:?} is not an HTTP method"
        ));
    }
    let host = url
        .host_str()
        .and_then(crate::domain::apps::normalise_host)
        .ok_or_else(|| format!("the forwarded URL {:?} has no host", url.as_str()))?;
    Ok(Original {
        method: method.to_ascii_uppercase(),
        url,
        host,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, Problem> {
    let value = headers
        .get(name)
        .ok_or_else(|| format!("missing header {}", display_name(name)))?;
    let text = value
        .to_str()
        .map_err(|_| format!("header {} is not text", display_name(name)))?
        .trim();
    if text.is_empty() {
        return Err(format!("header {} is empty", display_name(name)));
    }
    Ok(text)
}

/// The client-facing value of a list header (the first hop's).
fn first(value: &str) -> &str {
    value.split(',').next().unwrap_or(value).trim()
}

fn display_name(name: &HeaderName) -> &'static str {
    match name.as_str() {
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-forwarded-proto" => "X-Forwarded-Proto",
        "x-forwarded-host" => "X-Forwarded-Host",
        "x-forwarded-uri" => "X-Forwarded-Uri",
        "x-original-method" => "X-Original-Method",
        "x-original-url" => "X-Original-URL",
        _ => "a forwarding header",
    }
}

/// A misconfigured proxy sends the same broken request for every visitor: one log line a
/// minute is enough to find it.
pub fn log_problem(style: Style, problem: &str) {
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let last = LAST.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(endpoint = ?style, problem, "forward-auth: the proxy's request is incomplete (logged at most once a minute); see docs/forward-auth.md");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forward_auth_headers_make_the_url() {
        let h = headers(&[
            ("x-forwarded-method", "post"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "App.Example.com:8443, proxy.internal"),
            ("x-forwarded-uri", "/a/b?c=d"),
        ]);
        let o = read(Style::ForwardAuth, &h).unwrap();
        assert_eq!(o.method, "POST");
        assert_eq!(o.host, "app.example.com");
        assert_eq!(o.url.as_str(), "https://app.example.com:8443/a/b?c=d");
    }

    #[test]
    fn the_first_missing_header_is_named() {
        let h = headers(&[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
        ]);
        let e = read(Style::ForwardAuth, &h).unwrap_err();
        assert_eq!(e, "missing header X-Forwarded-Host");
        let e = read(Style::AuthRequest, &HeaderMap::new()).unwrap_err();
        assert_eq!(e, "missing header X-Original-Method");
        let h = headers(&[
            ("x-original-method", "GET"),
            ("x-original-url", "/relative"),
        ]);
        assert!(
            read(Style::AuthRequest, &h)
                .unwrap_err()
                .contains("X-Original-URL")
        );
        let h = headers(&[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "ftp"),
            ("x-forwarded-host", "a.example.com"),
            ("x-forwarded-uri", "/"),
        ]);
        assert!(
            read(Style::ForwardAuth, &h)
                .unwrap_err()
                .contains("X-Forwarded-Proto")
        );
    }
}
