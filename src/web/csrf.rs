//! Cross-site request forgery protection for every state-changing request.
//!
//! Two independent checks: the browser's `Origin` (or `Referer`) must be this site, and a
//! secret token must come back — as the `csrf_token` form field for HTML forms, or the
//! `X-CSRF-Token` header for JSON calls and htmx. Enforced here, in one middleware, so no
//! handler can forget it.
//!
//! Which token: a signed-in session carries its own (stored with the session). Everyone else
//! — anonymous visitors of the sign-in, registration and setup pages, and people a
//! forward-auth proxy vouches for — gets a *signed double-submit* token: a random nonce in the
//! `hallpass_csrf` cookie and, in the form, an HMAC of that nonce (and of who the proxy says
//! the caller is) under the server secret. Nothing is written to the database for it, so
//! anonymous page views cost no storage; a page on another site can neither read the
//! cookie nor compute the HMAC.
//!
//! Every token handed out is *masked* ([`mask`]): a fresh random pad and the token XORed
//! with it, so the bytes differ in every response while the check unmasks them to the same
//! token. Pages are served compressed, and a compressed page that carries a secret next to
//! text an attacker can reflect into it (a search box, a username in an error message) leaks
//! the secret through the response's length, a byte at a time (BREACH). A token that is
//! different random bytes in every response gives that nothing to converge on. (Session
//! cookies are headers, which HTTP/1.1 does not compress.)

use crate::service::Refusal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::error::{ApiError, UiError};
use super::identity::{AuthMethod, Identity};
use super::session;
use crate::config::Config;
use crate::state::AppState;

pub const FORM_FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// The cookie holding the nonce of the signed double-submit token.
pub const NONCE_COOKIE: &str = "hallpass_csrf";
/// The nonce cookie outlives a form left open over a long lunch, not much more.
const NONCE_MAX_AGE_SECS: u32 = 12 * 3600;

/// Endpoints that sign a caller in have no session to bind a token to yet; the origin check
/// still applies, and a JSON body cannot be sent cross-site without a CORS preflight.
const TOKENLESS_API: &[&str] = &["/api/auth/login"];

/// How the caller of this request was identified when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// A signed-in session cookie: the session's own token.
    Session,
    /// Anything else browser-borne (a forward-auth proxy's headers, the dev bypass): the
    /// signed token, bound to the user.
    Other,
}

/// This request's CSRF context, set by [`context`] for everything inside it.
pub struct RequestCsrf {
    caller: Caller,
    /// The nonce cookie the browser sent, if it is well-formed.
    nonce: Option<String>,
    /// What the signed token is bound to besides the nonce: `""` for anonymous callers,
    /// `proxy:<user id>` and the like otherwise (so a token minted for one person is no use
    /// to another who could plant the nonce cookie).
    binding: String,
    /// For the key, derived only when a token is made or checked (not on every request).
    state: AppState,
    /// The signed token for forms, with the nonce minted for it when no cookie came.
    issued: OnceLock<(String, Option<String>)>,
    used: AtomicBool,
    /// A signed-in session's own token when identity found it in the session cache (see
    /// [`SessionToken`]).
    session_token: Option<Arc<str>>,
}

/// A signed-in session's own token, as identity resolution found it in the session cache:
/// handed to the request's CSRF context so that neither the check nor a page's forms load
/// the session to read it.
#[derive(Debug, Clone)]
pub struct SessionToken(pub Arc<str>);

impl RequestCsrf {
    /// The signed token for this request's forms; mints a nonce (set as a cookie on the way
    /// out) when the browser sent none.
    fn signed_token(&self) -> String {
        let (token, _) = self.issued.get_or_init(|| match &self.nonce {
            Some(n) => (self.sign(n), None),
            None => {
                let n = new_nonce();
                (self.sign(&n), Some(n))
            }
        });
        self.used.store(true, Ordering::Relaxed);
        token.clone()
    }

    /// The nonce naming this browser: the one it sent, else the one minted for it (set as a
    /// cookie on the way out).
    fn browser_nonce(&self) -> Option<String> {
        let _ = self.signed_token();
        match self.issued.get() {
            Some((_, Some(minted))) => Some(minted.clone()),
            _ => self.nonce.clone(),
        }
    }

    /// The session's own token if identity brought it along and the request has not changed
    /// its session (a sign-in or sign-out inside it carries a token of its own).
    fn known_session_token(&self, session: &Session) -> Option<&str> {
        if self.caller != Caller::Session || session.is_modified() {
            return None;
        }
        self.session_token.as_deref()
    }

    /// The signed token a submitted form must carry (from the cookie the browser sent).
    fn expected_signed(&self) -> Option<String> {
        self.nonce.as_ref().map(|n| self.sign(n))
    }

    /// HMAC-SHA256 of the nonce and the binding under a key of its own.
    fn sign(&self, nonce: &str) -> String {
        let key = self.state.secret.derive_key("csrf-signed-token");
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            return String::new();
        };
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(self.binding.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

tokio::task_local! {
    static REQUEST: Arc<RequestCsrf>;
}

/// Runs `rest` — the rest of the request — in its CSRF context: how its forms are
/// protected, and the nonce cookie set if a page handed out a signed token without one.
/// Called by identity resolution once it knows the caller (a function, not a layer of its
/// own: every layer costs the hot path).
pub async fn within_context<F, Fut>(state: &AppState, mut req: Request, rest: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let identity = req
        .extensions()
        .get::<Identity>()
        .and_then(|i| i.0.as_ref());
    let (caller, binding) = match identity {
        None => (Caller::Anonymous, String::new()),
        Some(u) if u.auth_method.is_session() => (Caller::Session, String::new()),
        Some(u) => (Caller::Other, format!("{:?}:{}", u.auth_method, u.user.id)),
    };
    let ctx = Arc::new(RequestCsrf {
        caller,
        nonce: cookie(req.headers(), NONCE_COOKIE)
            .filter(|n| n.len() == 43 && URL_SAFE_NO_PAD.decode(n).is_ok())
            .map(str::to_owned),
        binding,
        state: state.clone(),
        issued: OnceLock::new(),
        used: AtomicBool::new(false),
        session_token: req.extensions_mut().remove::<SessionToken>().map(|t| t.0),
    });
    let mut response = REQUEST.scope(ctx.clone(), rest(req)).await;
    if ctx.used.load(Ordering::Relaxed)
        && let Some((_, Some(nonce))) = ctx.issued.get()
    {
        let secure = if state.config.cookie_secure() {
            "; Secure"
        } else {
            ""
        };
        let value = format!(
            "{NONCE_COOKIE}={nonce}; Path=/; Max-Age={NONCE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax{secure}"
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The token this request's pages put in their forms. A session signed in before or during
/// this request uses its own token; everyone else the signed token (no storage).
/// Masked (see [`mask`]): a fresh value in every response, all of them valid.
pub async fn page_token(session: &Session) -> Result<String, tower_sessions::session::Error> {
    let ctx = REQUEST.try_with(Arc::clone).ok();
    let token = match ctx.as_deref().map(|c| c.caller) {
        Some(Caller::Other) => ctx.map(|c| c.signed_token()).unwrap_or_default(),
        Some(Caller::Anonymous) if !session::is_signed_in(session).await? => {
            ctx.map(|c| c.signed_token()).unwrap_or_default()
        }
        _ => match ctx.as_deref().and_then(|c| c.known_session_token(session)) {
            Some(known) => known.to_owned(),
            None => session::session_csrf_token(session).await?,
        },
    };
    Ok(mask(&token))
}

/// `base64url(pad ‖ pad ⊕ token)` with a fresh random pad: the same token in different
/// bytes in every response, against BREACH (see the module comment).
fn mask(token: &str) -> String {
    use rand::RngCore;
    let token = token.as_bytes();
    let mut out = vec![0u8; token.len() * 2];
    let (pad, masked) = out.split_at_mut(token.len());
    rand::rng().fill_bytes(pad);
    for ((m, p), t) in masked.iter_mut().zip(pad.iter()).zip(token) {
        *m = p ^ t;
    }
    URL_SAFE_NO_PAD.encode(out)
}

/// The token inside a masked value; `None` if `given` is not one.
fn unmask(given: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(given).ok()?;
    if raw.is_empty() || raw.len() % 2 != 0 {
        return None;
    }
    let (pad, masked) = raw.split_at(raw.len() / 2);
    Some(pad.iter().zip(masked).map(|(p, m)| p ^ m).collect())
}

/// Whether the token a request carried is `expected`: masked, as every token is handed out,
/// or bare (a token handed out before masking existed, in a page still open).
fn token_matches(expected: &str, given: &str) -> bool {
    let expected = expected.as_bytes();
    match unmask(given) {
        Some(token) if token.len() == expected.len() => bool::from(token.ct_eq(expected)),
        _ => bool::from(expected.ct_eq(given.as_bytes())),
    }
}

/// A value that names this browser without any storage: the nonce of its signed CSRF token,
/// minted (and set as a cookie) when it has none. Single sign-on binds its round trips to
/// it, so starting one writes no session row.
pub fn browser_nonce() -> Option<String> {
    REQUEST.try_with(|c| c.browser_nonce()).ok().flatten()
}

/// The nonce this browser sent, if any (never mints one).
pub fn sent_browser_nonce() -> Option<String> {
    REQUEST.try_with(|c| c.nonce.clone()).ok().flatten()
}

fn new_nonce() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The CSRF check of a state-changing request, then its body check (see
/// [`super::input::check_body`]). `Ok`: the request goes on; `Err`: the refusal.
pub async fn check(state: &AppState, session: &Session, req: Request) -> Result<Request, Response> {
    if req.method().is_safe() {
        return Ok(req);
    }
    // The setup page's backup upload is larger than any form (`backup.upload_limit`).
    let body_limit = if req.uri().path() == super::ui::setup::RESTORE_PATH {
        state.config.backup.upload_limit
    } else {
        state.config.server.body_limit
    };
    let api = super::surface::Surface::api_request(req.extensions());
    if !same_origin(req.headers(), &state.config) {
        tracing::warn!(path = %req.uri().path(), "refused a cross-site request");
        return Err(refuse(api, Refusal::CrossSiteRequest));
    }
    // Only browser-borne credentials ride along on a forged request: the session cookie, and
    // the identity a forward-auth proxy adds to whatever the browser sends. A caller who
    // proved itself with an `Authorization` header (API key) or is anonymous has nothing to
    // abuse through the JSON API.
    let browser_borne = req
        .extensions()
        .get::<Identity>()
        .and_then(|i| i.0.as_ref())
        .is_some_and(|u| u.auth_method.is_session() || u.auth_method == AuthMethod::Proxy);
    if api && (!browser_borne || TOKENLESS_API.contains(&req.uri().path())) {
        return super::input::check_body(body_limit, req).await;
    }
    let ctx = REQUEST.try_with(Arc::clone).ok();
    let known = ctx.as_deref().and_then(|c| c.known_session_token(session));
    let expected = match (ctx.as_deref(), known) {
        (Some(c), _) if c.caller != Caller::Session => c.expected_signed(),
        (_, Some(known)) => Some(known.to_owned()),
        _ => session::existing_csrf_token(session).await,
    };
    let (req, given) = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(h) => {
            let h = h.to_owned();
            (req, Some(h))
        }
        None if !api => token_from_form(req, body_limit).await?,
        None => (req, None),
    };
    let ok = match (expected, given) {
        (Some(e), Some(g)) => token_matches(&e, &g),
        _ => false,
    };
    if ok {
        super::input::check_body(body_limit, req).await
    } else {
        Err(refuse(api, Refusal::CsrfTokenInvalid))
    }
}

fn refuse(api: bool, refusal: Refusal) -> Response {
    if api {
        ApiError::from(refusal).into_response()
    } else {
        UiError::from(refusal).into_response()
    }
}

/// Reads a url-encoded body to find the token, then hands the same bytes on.
async fn token_from_form(
    req: Request,
    limit: usize,
) -> Result<(Request, Option<String>), Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return token_from_multipart(req, limit).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.").into_response())?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == FORM_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// The setup page's backup upload is the one multipart form (a file cannot travel
/// url-encoded): its `csrf_token` field, sent first, is read from a copy of the buffered
/// body. Other paths get no token from a multipart body.
async fn token_from_multipart(
    req: Request,
    limit: usize,
) -> Result<(Request, Option<String>), Response> {
    use axum::extract::FromRequest;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .map(str::to_owned);
    let Some(content_type) =
        content_type.filter(|_| req.uri().path() == super::ui::setup::RESTORE_PATH)
    else {
        return Ok((req, None));
    };
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large.").into_response())?;
    let copy = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes.clone()))
        .unwrap_or_default();
    let mut token = None;
    if let Ok(mut form) = axum::extract::Multipart::from_request(copy, &()).await
        && let Ok(Some(field)) = form.next_field().await
        && field.name() == Some(FORM_FIELD)
    {
        token = field.text().await.ok();
    }
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

/// `Origin` (else `Referer`) must name this site: the configured public URL, or the host the
/// request was sent to. Requests with neither header (non-browser clients) pass this check
/// and still need the token.
fn same_origin(headers: &HeaderMap, config: &Config) -> bool {
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(source) = source else {
        return true;
    };
    let Ok(url) = url::Url::parse(source) else {
        return false; // includes the opaque origin "null"
    };
    let origin = url.origin().ascii_serialization();
    if config
        .server
        .public_url
        .as_ref()
        .is_some_and(|p| p.origin() == origin)
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    host.is_some_and(|h| h.eq_ignore_ascii_case(&authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_and_all_match() {
        let token = new_nonce();
        let (a, b) = (mask(&token), mask(&token));
        assert_ne!(a, b, "a fresh pad every time");
        assert!(!a.contains(&token));
        assert!(token_matches(&token, &a) && token_matches(&token, &b));
        assert!(token_matches(&token, &token), "bare tokens still pass");
        assert!(!token_matches(&token, &mask(&new_nonce())));
        assert!(!token_matches(&token, ""));
        assert!(!token_matches(&token, "not base64 !"));
        assert!(!token_matches(&token, &a[..a.len() - 2]));
    }
}
