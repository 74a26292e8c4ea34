//! Where a person goes back to after signing in, when the sign-in was asked for by another
//! app: `/login?rd=<absolute URL>` (forward-auth sends people there).
//!
//! An absolute destination taken from a link is an open redirect unless its host is checked:
//! anyone could send a victim a Hallpass sign-in link that ends on a look-alike site. So the
//! URL is parsed by the `url` crate (the WHATWG parser browsers use) and the *parsed* host is
//! compared — never the raw text, which `\`, userinfo, percent-encoding, IDN or case can make
//! say something else than what the browser will follow. It is accepted only over http(s) and
//! only for hosts Hallpass is responsible for: its own public host, a host inside
//! `session.cookie_domain` (where its session cookie goes anyway), or a host of a configured
//! app. Everything else is ignored (the caller falls back to the relative `next`).

/// Longest destination accepted; longer ones are ignored (no proxy sends a URL this long).
const MAX_LEN: usize = 4096;

/// The hosts a destination may name.
pub struct Allowed<'a> {
    /// `server.public_url`'s host, if set.
    pub public_host: Option<&'a str>,
    /// `session.cookie_domain` (normalised: lower case, no leading dot), if set.
    pub cookie_domain: Option<&'a str>,
    /// Whether a host (lower case, punycode) matches one of the configured apps' host
    /// patterns.
    pub is_app_host: &'a dyn Fn(&str) -> bool,
}

/// The destination `raw` as the browser must be sent to it (the parser's own serialisation,
/// so what is followed is exactly what was checked), or `None` when it is not one of ours.
pub fn parse(raw: &str, allowed: &Allowed<'_>) -> Option<String> {
    if raw.len() > MAX_LEN
        // The parser silently drops tabs and newlines and reads `\` as `/`: text that would
        // be followed differently from how it reads is refused outright.
        || raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    // Only explicit absolute URLs: `https:evil.example` (no slashes) and `//evil.example`
    // (protocol-relative) parse in surprising ways and no proxy sends them.
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let ours = match url.host()? {
        // The parser lower-cases, percent-decodes and punycodes the name.
        url::Host::Domain(name) => {
            allowed.public_host.is_some_and(|p| same_host(name, p))
                || allowed.cookie_domain.is_some_and(|d| within(name, d))
                || (allowed.is_app_host)(name)
        }
        // An address can equal the public host; it is never "inside" a domain.
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => {
            let shown = url.host_str()?;
            allowed.public_host.is_some_and(|p| same_host(shown, p)) || (allowed.is_app_host)(shown)
        }
    };
    ours.then(|| url.to_string())
}

/// Whether host `name` is the cookie domain `domain` or one of its subdomains (the rule
/// browsers use to send a cookie with `Domain=domain`). Both in lower case.
pub fn within(name: &str, domain: &str) -> bool {
    let domain = domain.trim_start_matches('.');
    !domain.is_empty()
        && (name == domain
            || name
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

fn same_host(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_app(_: &str) -> bool {
        false
    }

    fn with<'a>(cookie_domain: Option<&'a str>, apps: &'a dyn Fn(&str) -> bool) -> Allowed<'a> {
        Allowed {
            public_host: Some("auth.example.com"),
            cookie_domain,
            is_app_host: apps,
        }
    }

    fn check(raw: &str) -> Option<String> {
        parse(raw, &with(Some("example.com"), &no_app))
    }

    #[test]
    fn our_hosts_are_accepted_and_normalised() {
        assert_eq!(
            check("https://app.example.com/x?y=1#z").as_deref(),
            Some("https://app.example.com/x?y=1#z")
        );
        assert_eq!(
            check("https://auth.example.com").as_deref(),
            Some("https://auth.example.com/")
        );
        assert_eq!(
            check("http://example.com:8080/").as_deref(),
            Some("http://example.com:8080/")
        );
        // Upper case scheme and host are what the browser follows in lower case.
        assert_eq!(
            check("HTTPS://App.EXAMPLE.com/Path").as_deref(),
            Some("https://app.example.com/Path")
        );
        assert!(check("https://a.b.example.com/").is_some());
        // Without a cookie domain only the public host itself (any port, like cookies).
        let own = |raw: &str| parse(raw, &with(None, &no_app));
        assert!(own("https://auth.example.com:8443/x").is_some());
        assert!(own("https://app.example.com/x").is_none());
    }

    #[test]
    fn app_hosts_come_from_the_predicate() {
        let apps = |h: &str| h == "media.home.lan";
        let p = |raw: &str| parse(raw, &with(None, &apps));
        assert!(p("http://media.home.lan/library").is_some());
        assert!(
            p("http://MEDIA.home.lan/").is_some(),
            "the predicate sees lower case"
        );
        assert!(p("http://other.home.lan/").is_none());
        assert!(p("http://media.home.lan.evil.example/").is_none());
    }

    #[test]
    fn addresses_must_be_the_public_host() {
        let allowed = Allowed {
            public_host: Some("127.0.0.1"),
            cookie_domain: None,
            is_app_host: &no_app,
        };
        assert!(parse("http://127.0.0.1:9000/x", &allowed).is_some());
        assert!(parse("http://127.0.0.2/x", &allowed).is_none());
        // An address never counts as inside a cookie domain made of digits.
        let allowed = Allowed {
            public_host: None,
            cookie_domain: Some("0.1"),
            is_app_host: &no_app,
        };
        assert!(parse("http://127.0.0.1/", &allowed).is_none());
    }

    #[test]
    fn every_open_redirect_form_is_ignored() {
        for raw in [
            // Other sites, and names that merely start or end like ours.
            "https://evil.example/",
            "https://example.com.evil.example/",
            "https://auth.example.com.evil.example/x",
            "https://notexample.com/",
            "https://evil-example.com/",
            "https://example.com./",
            // Protocol-relative and scheme-less forms.
            "//evil.example",
            "//app.example.com/x",
            "///evil.example",
            "https:evil.example",
            "https:app.example.com",
            "https:/app.example.com/",
            "/\\evil.example",
            "\\\\evil.example",
            // Backslashes, which the parser reads as slashes.
            "https://evil.example\\@app.example.com/",
            "https://app.example.com\\@evil.example/",
            "https:\\\\evil.example",
            // Userinfo: the host is what follows the `@`, the reader sees what precedes it.
            "https://app.example.com@evil.example/",
            "https://app.example.com:pw@evil.example/",
            "https://user@app.example.com/",
            "https://user:pw@app.example.com/",
            // Other schemes.
            "javascript:alert(1)",
            "JavaScript://app.example.com/%0aalert(1)",
            "data:text/html,<script>alert(1)</script>",
            "ftp://app.example.com/",
            "file:///etc/passwd",
            "ws://app.example.com/",
            // Encoded tricks: nothing is decoded before the check but by the parser itself.
            "%2F%2Fevil.example",
            "https:%2F%2Fevil.example",
            "https://evil.example%2F@app.example.com/",
            "https://app.example.com%2eevil.example/",
            "https://%65vil.example/",
            "https%3A%2F%2Fapp.example.com%2F",
            // Control characters and spaces, which the parser would drop or trim.
            "https://app.example.com/x\r\nSet-Cookie: a=b",
            "https://evil.example\t/",
            "https://app.exa\tmple.com/",
            " https://app.example.com/",
            "https://app.example.com/\u{0}",
            "https://app.example.com/\u{85}",
            // IDN look-alikes: the parser punycodes them, which is not our domain.
            "https://app.exаmple.com/",
            "https://ａpp.example.com.evil.example/",
            // Relative paths are `next`'s business, not `rd`'s.
            "/account",
            "app.example.com/x",
            "",
        ] {
            assert_eq!(check(raw), None, "{raw:?} must be ignored");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_LEN));
        assert_eq!(check(&long), None);
    }

    #[test]
    fn idn_hosts_compare_in_punycode() {
        let allowed = Allowed {
            public_host: Some("auth.xn--bcher-kva.example"),
            cookie_domain: Some("xn--bcher-kva.example"),
            is_app_host: &no_app,
        };
        assert_eq!(
            parse("https://App.Bücher.example/x", &allowed).as_deref(),
            Some("https://app.xn--bcher-kva.example/x")
        );
        // A full-width letter folds to its ASCII form (the browser does the same).
        assert!(parse("https://ａpp.xn--bcher-kva.example/", &allowed).is_some());
    }

    #[test]
    fn within_follows_the_cookie_rule() {
        assert!(within("example.com", "example.com"));
        assert!(within("auth.example.com", "example.com"));
        assert!(within("a.b.example.com", ".example.com"));
        assert!(!within("example.com.evil.net", "example.com"));
        assert!(!within("notexample.com", "example.com"));
        assert!(!within("com", "example.com"));
        assert!(!within("example.com", ""));
    }
}
