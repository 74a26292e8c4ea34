//! What a forward-auth request carries to prove who is asking: an API key (`Authorization:
//! Bearer hp_…`, or `Basic` whose password is a key, for clients that only do Basic) or the
//! session cookie. Never a password: this path runs before every request of every guarded
//! app, and argon2 has no place on it.
//!
//! An `Authorization` header that does not carry a Hallpass key is left alone — the guarded
//! app may use that header itself — and the cookie decides.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::service::api_keys::well_formed;
use crate::service::authz::Credentials;

/// The API key, if the request carries one: an owned string, as `Basic` has to be decoded.
pub fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return well_formed(token).then(|| token.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(token).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_user, password) = text.split_once(':')?;
        return well_formed(password).then(|| password.to_owned());
    }
    None
}

/// The value of the session cookie, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The credentials to check, the key first: it is explicit, the cookie merely ambient.
pub fn of<'a>(key: Option<&'a str>, headers: &'a HeaderMap, cookie_name: &str) -> Credentials<'a> {
    match (key, cookie(headers, cookie_name)) {
        (Some(key), _) => Credentials::ApiKey(key),
        (None, Some(c)) => Credentials::Cookie(c),
        (None, None) => Credentials::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn keys_come_from_bearer_or_the_basic_password_only_when_shaped_like_ours() {
        let key = crate::service::api_keys::generate();
        let bearer = with(header::AUTHORIZATION, &format!("Bearer {key}"));
        assert_eq!(api_key(&bearer).as_deref(), Some(key.as_str()));
        let basic = STANDARD.encode(format!("anyone:{key}"));
        let basic = with(header::AUTHORIZATION, &format!("Basic {basic}"));
        assert_eq!(api_key(&basic).as_deref(), Some(key.as_str()));
        let app_password = STANDARD.encode("alice:hunter2");
        let app_own = with(header::AUTHORIZATION, &format!("Basic {app_password}"));
        assert_eq!(api_key(&app_own), None, "a password is never checked here");
        let other_token = with(header::AUTHORIZATION, "Bearer eyJhbGciOi.x.y");
        assert_eq!(api_key(&other_token), None);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let h = with(header::COOKIE, "a=1; hallpass_session=abc; b=2");
        assert_eq!(cookie(&h, "hallpass_session"), Some("abc"));
        assert_eq!(
            cookie(&with(header::COOKIE, "a=1"), "hallpass_session"),
            None
        );
    }
}
