//! Single sign-on vocabulary: provisioning policies, identities, and the rules about them
//! that both front ends rely on. A provider's settings and their parsing are in `provider`;
//! why a round trip did not sign anyone in (and what the page says) is in `problem`.

use std::fmt;

mod problem;
mod provider;
pub use problem::{LinkProblem, SignInProblem};
pub use provider::{
    Provider, ProviderFields, ProviderInput, SecretChange, default_scopes, parse_claim_name,
    parse_issuer, parse_optional_claim_name, parse_provider_id, parse_scopes,
};

/// What happens when an identity nobody linked signs in: `link` (only identities linked to
/// an account may sign in), `approve` (the first sign-in creates a `pending` account that an
/// admin approves) or `auto` (the first sign-in creates an active `user`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Only identities linked to an account (by an admin or its owner) may sign in.
    #[default]
    Link,
    /// The first sign-in creates a `pending` account that an admin approves.
    Approve,
    /// The first sign-in creates an active `user`.
    Auto,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Link, Policy::Approve, Policy::Auto];

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Link => "link",
            Policy::Approve => "approve",
            Policy::Auto => "auto",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "link" | "" => Ok(Policy::Link),
            "approve" => Ok(Policy::Approve),
            "auto" => Ok(Policy::Auto),
            other => Err(format!(
                "Unknown policy \"{}\": use link, approve or auto.",
                clean_claim(other, 20).unwrap_or_default()
            )),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Policy::Link => "only linked identities may sign in",
            Policy::Approve => "new identities get an account awaiting approval",
            Policy::Auto => "new identities get an active user account",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a provider is defined: `ui` (the admin pages or the JSON API) or `env`
/// (`HALLPASS_OIDC_*`). Environment providers are read-only in the admin UI and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ProviderSource)]
pub enum Source {
    Env,
    Ui,
}

/// The provider id reserved for reverse-proxy identities.
pub const PROXY_PROVIDER: &str = "proxy";

/// Text copied from an identity provider: control characters removed, surrounding space
/// trimmed, at most `max_chars` characters. `None` when nothing is left.
pub fn clean_claim(raw: &str, max_chars: usize) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
        .collect();
    let trimmed: String = cleaned.trim().chars().take(max_chars).collect();
    let trimmed = trimmed.trim_end().to_owned();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// Bidi overrides and zero-width characters: harmless to store, misleading to display.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Longest display name and email kept from an identity provider.
pub const MAX_CLAIM_NAME: usize = 100;
pub const MAX_CLAIM_EMAIL: usize = 254;
/// Longest subject accepted (OIDC allows 255 ASCII characters).
pub const MAX_SUBJECT: usize = 255;

/// An identity at a provider, linked to one user.
#[derive(Debug, Clone)]
pub struct LinkedIdentity {
    pub id: i64,
    pub user_id: i64,
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

/// How a user could still sign in after an identity is removed.
#[derive(Debug, Clone, Copy)]
pub struct SignInMethods {
    pub has_password: bool,
    /// Local (password) sign-in is on for the instance, or forced on by the override.
    pub local_login: bool,
    /// Identities that would remain and still match their provider's current issuer.
    pub other_usable_identities: usize,
    /// The account's passkeys: each signs in on its own, whatever the password setting.
    pub passkeys: usize,
}

/// What unlinking does to the instance besides removing the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkEffect {
    Plain,
    /// The user removes their own last identity while password sign-in is off: it is turned
    /// back on, or they could never sign in again.
    TurnsLocalLoginOn,
}

/// Unlinking must leave the account a way in (see ARCHITECTURE.md).
pub fn check_unlink(m: SignInMethods, is_self: bool) -> Result<UnlinkEffect, String> {
    if m.other_usable_identities > 0 || m.passkeys > 0 {
        return Ok(UnlinkEffect::Plain);
    }
    if !m.has_password {
        return Err(
            "This is the account's only way to sign in (it has no password and no passkey): set a password or link another identity first."
                .into(),
        );
    }
    if m.local_login {
        return Ok(UnlinkEffect::Plain);
    }
    if is_self {
        return Ok(UnlinkEffect::TurnsLocalLoginOn);
    }
    Err(
        "Password sign-in is turned off, so this account could not sign in without this identity: turn password sign-in on first."
            .into(),
    )
}

/// `HALLPASS_BOOTSTRAP_ADMIN=<provider>:<subject-or-username>`: which identity becomes the
/// first admin of an empty instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapPin {
    pub provider: String,
    pub who: String,
}

impl BootstrapPin {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (provider, who) = raw.trim().split_once(':').ok_or_else(|| {
            "expected <provider>:<subject-or-username>, e.g. authelia:alice".to_owned()
        })?;
        let provider = parse_provider_id(provider)?;
        let who = who.trim();
        if who.is_empty() {
            return Err("the part after ':' (a subject or a username) is empty".into());
        }
        Ok(Self {
            provider,
            who: who.to_owned(),
        })
    }

    pub fn matches(&self, provider: &str, subject: &str, username: Option<&str>) -> bool {
        self.provider == provider
            && (self.who == subject || username.is_some_and(|u| u.eq_ignore_ascii_case(&self.who)))
    }
}

/// `true`/`1`/`yes` in any case, surrounding spaces ignored.
pub fn env_flag(raw: Option<&str>) -> bool {
    raw.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_lose_control_characters_and_are_capped() {
        assert_eq!(
            clean_claim(" Ali\u{0}ce\u{1b}[31m \u{202E}Smith\n", 100).as_deref(),
            Some("Alice[31m Smith")
        );
        assert_eq!(
            clean_claim(&"x".repeat(500), 100).map(|s| s.len()),
            Some(100)
        );
        assert_eq!(clean_claim("\u{7}\n", 10), None);
    }

    #[test]
    fn override_flag_accepts_the_documented_spellings() {
        for v in ["true", "TRUE", " yes ", "1", "Yes"] {
            assert!(env_flag(Some(v)), "{v}");
        }
        for v in ["", "0", "no", "off", "truthy"] {
            assert!(!env_flag(Some(v)), "{v}");
        }
        assert!(!env_flag(None));
    }

    #[test]
    fn unlinking_keeps_a_way_in() {
        let m = |has_password, local_login, other| SignInMethods {
            has_password,
            local_login,
            other_usable_identities: other,
            passkeys: 0,
        };
        // A passkey is a way in of its own (also with password sign-in off).
        let with_passkey = |has_password, local_login| SignInMethods {
            passkeys: 1,
            ..m(has_password, local_login, 0)
        };
        assert_eq!(
            check_unlink(with_passkey(false, true), false),
            Ok(UnlinkEffect::Plain)
        );
        assert_eq!(
            check_unlink(with_passkey(true, false), true),
            Ok(UnlinkEffect::Plain)
        );
        assert!(check_unlink(m(false, true, 0), false).is_err());
        assert!(check_unlink(m(false, true, 0), true).is_err());
        assert_eq!(
            check_unlink(m(false, false, 1), false),
            Ok(UnlinkEffect::Plain)
        );
        assert_eq!(
            check_unlink(m(true, true, 0), false),
            Ok(UnlinkEffect::Plain)
        );
        assert!(check_unlink(m(true, false, 0), false).is_err());
        assert_eq!(
            check_unlink(m(true, false, 0), true),
            Ok(UnlinkEffect::TurnsLocalLoginOn)
        );
    }

    #[test]
    fn pin_matches_subject_or_username() {
        let pin = BootstrapPin::parse("authelia:Alice").unwrap_or_else(|_| BootstrapPin {
            provider: String::new(),
            who: String::new(),
        });
        assert!(pin.matches("authelia", "Alice", None));
        assert!(pin.matches("authelia", "123", Some("alice")));
        assert!(!pin.matches("other", "Alice", None));
        assert!(BootstrapPin::parse("nocolon").is_err());
    }
}
