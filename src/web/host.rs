//! Which names this server answers to.
//!
//! A DNS-rebinding page is served from a name of the attacker's that later resolves to
//! 127.0.0.1: the owner's browser then talks to Hallpass as a "same-origin" page of that name,
//! and every request carries `Host: attacker.example`. Refusing names Hallpass was not told
//! about ends the attack before any handler runs. IP-address hosts cannot be rebound (the
//! attack needs a name), and `localhost` never leaves the machine, so both are always
//! accepted; any other name must be `server.public_url`'s host or listed in
//! `server.allowed_hosts`.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, UiError};
use crate::config::Config;

/// The refusal of a request whose `Host` this server does not answer to (run by
/// `edge::check`; health checks are not routed through it: probes use whatever name reaches
/// the container).
pub fn refusal(req: &Request, api: bool, config: &Config) -> Option<Response> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| allowed(h, config)) {
        return None;
    }
    let shown: String = host
        .unwrap_or("(none)")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    tracing::warn!(host = %shown, "refused a request for a host name this server does not answer to");
    let message = format!(
        "This server does not answer to the name \"{shown}\". If that is the address you use for Hallpass, set server.public_url to it (e.g. https://{name}) or add \"{name}\" to server.allowed_hosts, then restart.",
        name = strip_port(&shown)
    );
    Some(if api {
        ApiError::new(StatusCode::BAD_REQUEST, "HOST_NOT_ALLOWED", message).into_response()
    } else {
        UiError::BadRequest(message).into_response()
    })
}

/// Whether a `Host` header value (`name[:port]`) names this server.
pub fn allowed(host: &str, config: &Config) -> bool {
    let name = strip_port(host).trim_end_matches('.');
    if name.is_empty() {
        return false;
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if config
        .server
        .public_url
        .as_ref()
        .is_some_and(|p| p.host().eq_ignore_ascii_case(&name))
    {
        return true;
    }
    config
        .server
        .allowed_hosts
        .iter()
        .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// `name:port` → `name`; `[v6]:port` and `[v6]` → `v6`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        // More than one colon and no brackets: not a `name:port` form; leave it whole.
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// Whether `s` can be an entry of `server.allowed_hosts`: a DNS name or an address, nothing
/// more (no scheme, port, path or wildcard).
pub fn is_host_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && (s.parse::<std::net::IpAddr>().is_ok()
            || s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public: Option<&str>, extra: &[&str]) -> Config {
        let mut c = Config::default();
        c.server.public_url = public.map(|p| p.parse().unwrap());
        c.server.allowed_hosts = extra.iter().map(|s| (*s).to_owned()).collect();
        c
    }

    #[test]
    fn addresses_and_localhost_are_always_accepted() {
        let c = config(Some("https://auth.example.com"), &[]);
        for h in [
            "127.0.0.1:8700",
            "127.0.0.1",
            "[::1]:8700",
            "[::1]",
            "192.168.1.10:8700",
            "localhost:8700",
            "LOCALHOST",
            "app.localhost",
        ] {
            assert!(allowed(h, &c), "{h}");
        }
    }

    #[test]
    fn names_must_be_configured() {
        let c = config(Some("https://auth.example.com"), &["hallpass.lan"]);
        assert!(allowed("auth.example.com", &c));
        assert!(allowed("Auth.Example.COM:443", &c));
        assert!(allowed("auth.example.com.", &c));
        assert!(allowed("hallpass.lan:8700", &c));
        for h in [
            "attacker.example:8700",
            "auth.example.com.attacker.example",
            "example.com",
            "localhost.attacker.example",
            "",
            ":8700",
        ] {
            assert!(!allowed(h, &c), "{h}");
        }
        assert!(!allowed("hallpass.lan", &config(None, &[])));
    }

    #[test]
    fn allowed_hosts_entries_are_plain_names() {
        assert!(is_host_name("auth.example.com"));
        assert!(is_host_name("hallpass"));
        assert!(is_host_name("10.0.0.5"));
        for bad in [
            "https://a.example",
            "a.example:8700",
            "*.example.com",
            "a/b",
            "",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
