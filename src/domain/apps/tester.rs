//! The rule tester of `/admin/apps`: what a typed URL and method become for
//! [`AppTable::decide`](super::AppTable::decide), and how its verdict is reported (which
//! app, which of its host patterns and path prefixes matched, and why).

use super::normalise_host;
use super::{App, Decision, DefaultPolicy, Denied, HostPattern, PathPrefix, Verdict};

/// A request to test, parsed from what the admin typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRequest {
    /// Upper case.
    pub method: String,
    /// Lower case, without port.
    pub host: String,
    /// Without query or fragment; `/` at least.
    pub path: String,
}

impl TestRequest {
    /// Parses a URL (`https://` is assumed when no scheme is typed) and a method (empty:
    /// `GET`). Errors are keyed by field: `url` or `method`.
    pub fn parse(url: &str, method: &str) -> Result<TestRequest, (&'static str, String)> {
        let method = method.trim().to_ascii_uppercase();
        let method = if method.is_empty() {
            "GET".to_owned()
        } else {
            method
        };
        if method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(("method", "A method is a word such as GET or POST.".into()));
        }
        let raw = url.trim();
        if raw.is_empty() {
            return Err(("url", "Type the address of a request to test.".into()));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let bad = || {
            (
                "url",
                "Type a full address such as https://app.example.com/path.".to_owned(),
            )
        };
        let parsed = url::Url::parse(&with_scheme).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err((
                "url",
                "Only http:// and https:// addresses are guarded.".into(),
            ));
        }
        let host = parsed.host_str().and_then(normalise_host).ok_or_else(bad)?;
        Ok(TestRequest {
            method,
            host,
            path: parsed.path().to_owned(),
        })
    }
}

/// The rule that decided, as the tester shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    pub id: i64,
    pub name: String,
    /// The host pattern of the app that matched (the most specific of its patterns).
    pub host: String,
    /// The path prefix that matched (the longest); `None` when the app has none.
    pub path: Option<String>,
}

/// The tester's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTest {
    pub decision: Decision,
    /// `None`: no app matched, `auth.forward.default_policy` decided.
    pub rule: Option<MatchedRule>,
    /// One sentence: the outcome and the rule ([`Verdict::explain`]).
    pub explanation: String,
}

impl RuleTest {
    pub fn of(verdict: &Verdict<'_>, request: &TestRequest, policy: DefaultPolicy) -> RuleTest {
        RuleTest {
            decision: verdict.decision,
            rule: verdict.app.map(|app| MatchedRule {
                id: app.id,
                name: app.name.clone(),
                host: matched_host(app, &request.host)
                    .map_or_else(String::new, ToString::to_string),
                path: matched_path(app, &request.path).map(|p| p.to_string()),
            }),
            explanation: verdict.explain(policy),
        }
    }
}

/// The most specific of `app`'s host patterns that matches `host`.
pub fn matched_host<'a>(app: &'a App, host: &str) -> Option<&'a HostPattern> {
    app.hosts
        .iter()
        .filter(|h| h.matches(host))
        .max_by_key(|h| h.specificity())
}

/// The longest of `app`'s path prefixes that matches `path`.
pub fn matched_path<'a>(app: &'a App, path: &str) -> Option<&'a PathPrefix> {
    app.paths
        .iter()
        .filter(|p| p.matches(path))
        .max_by_key(|p| p.specificity())
}

impl Decision {
    /// The stable name the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::SignIn => "sign_in",
            Decision::Deny(_) => "deny",
        }
    }

    /// Two or three words for the page.
    pub fn label(self) -> &'static str {
        match self {
            Decision::Allow => "Allowed",
            Decision::SignIn => "Sign-in required",
            Decision::Deny(_) => "Denied",
        }
    }
}

impl Denied {
    /// The stable name the API answers with.
    pub fn code(self) -> &'static str {
        match self {
            Denied::NotListed => "not_listed",
            Denied::Status(_) => "account_status",
            Denied::ReadOnly => "read_only",
            Denied::NoApp => "no_app",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_methods_are_parsed_for_the_rule() {
        let r = TestRequest::parse("HTTPS://Media.Example.com:8443/admin/x?q=1#f", "post").unwrap();
        assert_eq!(r.host, "media.example.com");
        assert_eq!(r.path, "/admin/x");
        assert_eq!(r.method, "POST");
        let r = TestRequest::parse("grafana.example.com", "").unwrap();
        assert_eq!(
            (r.host.as_str(), r.path.as_str(), r.method.as_str()),
            ("grafana.example.com", "/", "GET")
        );
        assert_eq!(TestRequest::parse("", "GET").unwrap_err().0, "url");
        assert_eq!(
            TestRequest::parse("ftp://x.example.com", "GET")
                .unwrap_err()
                .0,
            "url"
        );
        assert_eq!(
            TestRequest::parse("https://x.example.com", "G E T")
                .unwrap_err()
                .0,
            "method"
        );
    }
}
