//! What an app rule matches: host patterns (`app.example.com`, `*.example.com`) and path
//! prefixes (`/admin`). Parsed once when a rule is saved or loaded, so the hot path only
//! compares lower-case strings.

use std::fmt;

/// A host an app answers on: exact, or `*.` + a domain (any host *below* that domain, at any
/// depth; not the domain itself).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// Lower case, no port, no trailing dot; for a wildcard, the part after `*.`.
    host: String,
    wildcard: bool,
}

impl HostPattern {
    /// Parses one pattern as an admin types it. The message names what is wrong.
    pub fn parse(raw: &str) -> Result<HostPattern, String> {
        let text = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let (wildcard, host) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, text),
        };
        if host.is_empty() {
            return Err("a host pattern cannot be empty".into());
        }
        if host.contains('*') {
            return Err(format!(
                "{raw:?}: a wildcard is only allowed as the first label, as in *.example.com"
            ));
        }
        if host.contains(':') || host.contains('/') {
            return Err(format!(
                "{raw:?}: write the host name only, without scheme, port or path"
            ));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(format!("{raw:?} is not a valid host name"));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "{raw:?} would match every host under a top-level domain; name a domain, as in *.example.com"
            ));
        }
        Ok(HostPattern { host, wildcard })
    }

    /// Whether `host` (already lower case, without port) is matched.
    pub fn matches(&self, host: &str) -> bool {
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(self.host.as_str())
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The host (exact) or the domain below which it matches (wildcard).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Higher is more specific: every exact host beats every wildcard; among wildcards the
    /// longer domain wins (`*.media.example.com` over `*.example.com`).
    pub fn specificity(&self) -> usize {
        if self.wildcard {
            self.host.len()
        } else {
            usize::MAX
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "*.{}", self.host)
        } else {
            f.write_str(&self.host)
        }
    }
}

/// A path prefix: matches the path itself and everything below it at a `/` boundary
/// (`/admin` matches `/admin`, `/admin/` and `/admin/users`, not `/administrator`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPrefix(String);

impl PathPrefix {
    pub fn parse(raw: &str) -> Result<PathPrefix, String> {
        let text = raw.trim();
        if !text.starts_with('/') {
            return Err(format!("{raw:?}: a path prefix starts with /"));
        }
        if text.contains(['?', '#']) || text.chars().any(char::is_whitespace) {
            return Err(format!(
                "{raw:?}: a path prefix has no query, fragment or spaces"
            ));
        }
        if text.len() > 512 {
            return Err("a path prefix has at most 512 characters".into());
        }
        // "/admin/" and "/admin" mean the same thing; "/" stays "/".
        let trimmed = text.trim_end_matches('/');
        Ok(PathPrefix(if trimmed.is_empty() {
            "/".into()
        } else {
            trimmed.to_owned()
        }))
    }

    pub fn matches(&self, path: &str) -> bool {
        if self.0 == "/" {
            return true;
        }
        path.strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Longer prefixes are more specific.
    pub fn specificity(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The host of a `Host`-style value, lower case, without port or trailing dot (`None` when
/// it is empty or not a host at all).
pub fn normalise_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // An IPv6 literal keeps its brackets off: `[::1]:8080` → `::1`.
        rest.split(']').next()?
    } else {
        raw.rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(raw, |(host, _)| host)
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b)))
    .then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_hosts() {
        let exact = HostPattern::parse("App.Example.com.").unwrap();
        assert!(exact.matches("app.example.com"));
        assert!(!exact.matches("x.app.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("app.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("badexample.com"));
        assert!(!wild.matches("example.com.evil.net"));
        assert!(exact.specificity() > wild.specificity());
        let deeper = HostPattern::parse("*.media.example.com").unwrap();
        assert!(deeper.specificity() > wild.specificity());
        assert_eq!(wild.to_string(), "*.example.com");
    }

    #[test]
    fn bad_host_patterns_say_why() {
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.example.com",
            "https://app.example.com",
            "app.example.com:8080",
            "app example.com",
            "-app.example.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn path_prefixes_match_at_slash_boundaries() {
        let p = PathPrefix::parse("/admin/").unwrap();
        assert_eq!(p.as_str(), "/admin");
        assert!(p.matches("/admin"));
        assert!(p.matches("/admin/users"));
        assert!(!p.matches("/administrator"));
        assert!(!p.matches("/"));
        assert!(PathPrefix::parse("/").unwrap().matches("/anything"));
        assert!(PathPrefix::parse("admin").is_err());
        assert!(PathPrefix::parse("/a?b").is_err());
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(
            normalise_host("App.Example.com:8443").as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            normalise_host("example.com.").as_deref(),
            Some("example.com")
        );
        assert_eq!(normalise_host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(normalise_host(""), None);
        assert_eq!(normalise_host("a b"), None);
        assert_eq!(normalise_host("evil/x"), None);
    }
}
