//! "Test discovery": fetch a provider's discovery document and keys and say, in one
//! sentence, what worked or which side has to act. Shared by the wizard's button and
//! `POST /api/admin/sso/discovery`, so both report the same outcome in the same words.

use super::oidc::OidcRuntime;

/// What testing an issuer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// The discovery document and the key set were fetched.
    Found { userinfo: bool, keys: usize },
    /// The issuer is not a URL Hallpass accepts (nothing was fetched).
    BadIssuer(String),
    /// The settings (issuer URL, the provider's own setup) are wrong.
    Misconfigured(String),
    /// The network or the provider failed; trying again later may work.
    Unreachable(String),
}

impl Discovery {
    pub fn ok(&self) -> bool {
        matches!(self, Discovery::Found { .. })
    }

    /// The outcome's name for scripts: `ok`, `bad_issuer`, `misconfigured`, `unreachable`.
    pub fn code(&self) -> &'static str {
        match self {
            Discovery::Found { .. } => "ok",
            Discovery::BadIssuer(_) => "bad_issuer",
            Discovery::Misconfigured(_) => "misconfigured",
            Discovery::Unreachable(_) => "unreachable",
        }
    }

    /// The sentence the wizard and the API show.
    pub fn message(&self) -> String {
        match self {
            Discovery::Found { userinfo, keys } => format!(
                "Discovery succeeded: authorization, token{} endpoints and {keys} signing key(s) found.",
                if *userinfo { ", userinfo" } else { "" },
            ),
            Discovery::BadIssuer(m) | Discovery::Unreachable(m) => m.clone(),
            Discovery::Misconfigured(m) => format!("Misconfigured: {m}"),
        }
    }
}

/// Tests `issuer` as typed (uncached: the point is to see the provider as it is now).
pub async fn test(oidc: &OidcRuntime, issuer: &str) -> Discovery {
    let issuer = match crate::domain::sso::parse_issuer(issuer) {
        Ok(i) => i,
        Err(m) => return Discovery::BadIssuer(m),
    };
    match oidc.discover(&issuer).await {
        Ok(meta) => Discovery::Found {
            userinfo: meta.userinfo_endpoint().is_some(),
            keys: meta.jwks().keys().len(),
        },
        // Say which side has to act: the settings (issuer URL, provider setup) or the network.
        Err(problem) if problem.is_misconfiguration() => {
            Discovery::Misconfigured(problem.to_string())
        }
        Err(problem) => Discovery::Unreachable(problem.to_string()),
    }
}
