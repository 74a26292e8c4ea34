//! What can go wrong talking to a provider, in two vocabularies: [`DiscoveryProblem`] in the
//! words the SSO wizard shows an admin, [`FlowError`] for the log (the sign-in page only
//! says which kind of problem it was). Also how the openidconnect crate's errors map to them.

use std::fmt;

use crate::service::sso::http::{HttpError, MAX_RESPONSE_BYTES};

/// Why discovery failed, in the words the SSO wizard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryProblem {
    /// The discovery URL answered with this HTTP status.
    HttpStatus(u16),
    /// The document names another issuer than the one configured.
    IssuerMismatch { configured: String, found: String },
    /// The document lacks an endpoint the login flow needs.
    MissingEndpoints(String),
    /// No answer at all (DNS, refused, TLS, timeout).
    Unreachable(String),
    /// An answer that is not a discovery document.
    Invalid(String),
    /// The discovery document or the key set is larger than the cap.
    TooLarge(String),
}

impl DiscoveryProblem {
    /// A problem of the settings (the issuer URL, or the provider's own configuration) rather
    /// than of the network: the people signing in are told to ask an administrator instead
    /// of to try again later.
    pub fn is_misconfiguration(&self) -> bool {
        match self {
            DiscoveryProblem::HttpStatus(status) => *status < 500,
            DiscoveryProblem::IssuerMismatch { .. }
            | DiscoveryProblem::MissingEndpoints(_)
            | DiscoveryProblem::Invalid(_)
            | DiscoveryProblem::TooLarge(_) => true,
            DiscoveryProblem::Unreachable(_) => false,
        }
    }
}

impl fmt::Display for DiscoveryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryProblem::HttpStatus(s) => write!(
                f,
                "Discovery failed: the provider answered HTTP {s} at /.well-known/openid-configuration. Check the issuer URL."
            ),
            DiscoveryProblem::IssuerMismatch { configured, found } => {
                let slash_only = configured.trim_end_matches('/') == found.trim_end_matches('/');
                write!(
                    f,
                    "Issuer mismatch: the provider calls itself \"{found}\", but the issuer entered here is \"{configured}\". Use exactly the provider's value{}.",
                    if slash_only {
                        " — only the trailing slash differs"
                    } else {
                        ""
                    }
                )
            }
            DiscoveryProblem::MissingEndpoints(what) => write!(
                f,
                "The provider's discovery response is missing required endpoints ({what})."
            ),
            DiscoveryProblem::Unreachable(why) => {
                write!(f, "The provider is unreachable from Hallpass: {why}.")
            }
            DiscoveryProblem::Invalid(why) => write!(
                f,
                "The provider's answer is not a valid discovery document: {why}."
            ),
            DiscoveryProblem::TooLarge(what) => write!(
                f,
                "The provider's {what} is larger than {} KiB; Hallpass stopped reading it. Check the issuer URL.",
                MAX_RESPONSE_BYTES / 1024
            ),
        }
    }
}

/// Why a callback did not produce a verified identity. Details go to the log, never to the
/// page: the login banner only says which kind of problem it was.
#[derive(Debug)]
pub enum FlowError {
    Discovery(DiscoveryProblem),
    /// The token endpoint refused the code (used, expired, wrong client secret, PKCE).
    TokenExchange(String),
    /// The ID token failed verification (signature, issuer, audience, expiry, nonce).
    IdToken(String),
    /// The ID token lacks the configured subject claim.
    MissingSubject(String),
    Config(String),
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Discovery(p) => write!(f, "discovery: {p}"),
            FlowError::TokenExchange(m) => write!(f, "token exchange failed: {m}"),
            FlowError::IdToken(m) => write!(f, "ID token rejected: {m}"),
            FlowError::MissingSubject(c) => write!(f, "the ID token has no usable \"{c}\" claim"),
            FlowError::Config(m) => write!(f, "configuration: {m}"),
        }
    }
}

impl FlowError {
    /// Whether an administrator has to fix something (see
    /// [`DiscoveryProblem::is_misconfiguration`]).
    pub fn is_misconfiguration(&self) -> bool {
        match self {
            FlowError::Discovery(p) => p.is_misconfiguration(),
            FlowError::Config(_) => true,
            FlowError::TokenExchange(_) | FlowError::IdToken(_) | FlowError::MissingSubject(_) => {
                false
            }
        }
    }
}

pub(super) fn describe_token_error<E: std::error::Error>(e: &E) -> String {
    // The error chain names the OAuth error code (invalid_grant…) but never the code itself.
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub(super) fn classify(
    issuer: &str,
    e: openidconnect::DiscoveryError<HttpError>,
) -> DiscoveryProblem {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Response(status, _, msg) => {
            if status.is_success() {
                DiscoveryProblem::Invalid(msg)
            } else {
                DiscoveryProblem::HttpStatus(status.as_u16())
            }
        }
        D::Validation(msg) if msg.contains("unexpected issuer") => {
            let found = msg.split('`').nth(1).map(str::to_owned).unwrap_or_default();
            DiscoveryProblem::IssuerMismatch {
                configured: issuer.to_owned(),
                found,
            }
        }
        D::Validation(msg) => DiscoveryProblem::Invalid(msg),
        D::Parse(err) => {
            let text = err.to_string();
            if text.contains("missing field") {
                let field = text
                    .split('`')
                    .nth(1)
                    .map(str::to_owned)
                    .unwrap_or_else(|| text.clone());
                DiscoveryProblem::MissingEndpoints(field)
            } else {
                DiscoveryProblem::Invalid(text)
            }
        }
        D::Request(HttpError::TooLarge { url, .. }) => {
            let what = if url.contains("/.well-known/openid-configuration") {
                "discovery document"
            } else {
                "key set (JWKS)"
            };
            DiscoveryProblem::TooLarge(what.into())
        }
        D::Request(err) => DiscoveryProblem::Unreachable(describe_token_error(&err)),
        D::UrlParse(err) => DiscoveryProblem::Invalid(err.to_string()),
        other => DiscoveryProblem::Invalid(other.to_string()),
    }
}
