//! Why a single sign-on round trip did not end signed in (or linked), and the sentence each
//! reason shows. Both front ends (the sign-in page, the account page, the admin's links
//! page) and the callback that decides the outcome use these types, so none of them imports
//! another to learn a message. The codes travel in redirect URLs (`sso_error=…`,
//! `link_error=…`); a page turns a code back into a sentence, never showing text from the URL.

/// Why a sign-in through a provider did not happen (the sign-in page's banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInProblem {
    /// The identity is not linked to an account and the provider's policy is `link`.
    NotLinked,
    /// The started flow is unknown, used, from another browser, too old, or its provider's
    /// settings changed since.
    Expired,
    /// The provider's answer could not be turned into a verified identity.
    Failed,
    /// The provider is unknown or disabled, or single sign-on is off.
    Unavailable,
    /// The provider could not be reached (network).
    Unreachable,
    /// The provider's settings (or the provider itself) need an administrator.
    Misconfigured,
    /// The linked account is disabled.
    Disabled,
}

impl SignInProblem {
    const ALL: [SignInProblem; 7] = [
        SignInProblem::NotLinked,
        SignInProblem::Expired,
        SignInProblem::Failed,
        SignInProblem::Unavailable,
        SignInProblem::Unreachable,
        SignInProblem::Misconfigured,
        SignInProblem::Disabled,
    ];

    /// The code in the redirect URL.
    pub fn code(self) -> &'static str {
        match self {
            SignInProblem::NotLinked => "not_linked",
            SignInProblem::Expired => "expired",
            SignInProblem::Failed => "failed",
            SignInProblem::Unavailable => "unavailable",
            SignInProblem::Unreachable => "unreachable",
            SignInProblem::Misconfigured => "misconfigured",
            SignInProblem::Disabled => "disabled",
        }
    }

    /// The problem a code names; `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// The sentence shown for it.
    pub fn message(self) -> &'static str {
        match self {
            SignInProblem::NotLinked => {
                "Your identity at the provider is not linked to an account here. Ask an administrator to link it, or sign in with your password and use Verify & Link on your account page."
            }
            SignInProblem::Expired => {
                "The sign-in request expired or was tampered with. Please start again."
            }
            SignInProblem::Failed => {
                "Hallpass could not verify your identity with the provider. Try again; if it keeps failing, an administrator can find the reason in the server log."
            }
            SignInProblem::Unavailable => "That sign-in provider is not configured or is disabled.",
            SignInProblem::Unreachable => {
                "The sign-in provider cannot be reached right now. Try again later or use another way to sign in."
            }
            SignInProblem::Misconfigured => {
                "Sign-in with this provider is misconfigured. An administrator needs to check its settings (the server log names the problem); meanwhile use another way to sign in."
            }
            SignInProblem::Disabled => "This account is disabled.",
        }
    }
}

/// Why "Verify & Link" did not link the identity that came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// The round trip itself failed, as for a sign-in.
    Flow(SignInProblem),
    /// The identity is linked to this account already.
    AlreadyLinked,
    /// The identity belongs to another account (or this account cannot hold identities).
    Taken,
}

impl From<SignInProblem> for LinkProblem {
    fn from(p: SignInProblem) -> Self {
        LinkProblem::Flow(p)
    }
}

impl LinkProblem {
    /// The code in the redirect URL.
    pub fn code(self) -> &'static str {
        match self {
            LinkProblem::Flow(p) => p.code(),
            LinkProblem::AlreadyLinked => "already_linked",
            LinkProblem::Taken => "taken",
        }
    }

    /// The problem a code names; `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "already_linked" => Some(LinkProblem::AlreadyLinked),
            "taken" => Some(LinkProblem::Taken),
            other => SignInProblem::parse(other).map(LinkProblem::Flow),
        }
    }

    /// The sentence on the account page: the user cannot unlink another account's identity.
    pub fn message(self) -> &'static str {
        match self {
            LinkProblem::Flow(p) => p.message(),
            LinkProblem::AlreadyLinked => "That identity is already linked to your account.",
            LinkProblem::Taken => {
                "That identity is linked to another account. Ask an administrator."
            }
        }
    }

    /// The sentence on the admin's links page, where the other link can be removed.
    pub fn admin_message(self) -> &'static str {
        match self {
            LinkProblem::Taken => {
                "That identity is already linked to another account: unlink it there first."
            }
            other => other.message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_show_nothing() {
        for p in SignInProblem::ALL {
            assert_eq!(SignInProblem::parse(p.code()), Some(p));
            assert_eq!(LinkProblem::parse(p.code()), Some(LinkProblem::Flow(p)));
        }
        for p in [LinkProblem::AlreadyLinked, LinkProblem::Taken] {
            assert_eq!(LinkProblem::parse(p.code()), Some(p));
        }
        // The sign-in page has no sentence for a linking problem.
        assert_eq!(SignInProblem::parse("taken"), None);
        assert_eq!(SignInProblem::parse("<script>"), None);
        assert_eq!(LinkProblem::parse(""), None);
    }
}
