//! Single sign-on vocabulary: OpenID providers, provisioning policies, identities, and the
//! rules about them that both front ends rely on.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::FieldErrors;

mod problem;
pub use problem::{LinkProblem, SignInProblem};

/// What happens when an identity nobody linked signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
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

/// Where a provider is defined. Environment providers are read-only in the admin UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Env,
    Ui,
}

/// The provider id reserved for reverse-proxy identities.
pub const PROXY_PROVIDER: &str = "proxy";

/// A provider id: a lowercase slug that appears in the callback URL.
pub fn parse_provider_id(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 32 {
        return Err("Provider id must be 1–32 characters long.".into());
    }
    if !s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        || !s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(
            "Provider id may contain only lowercase letters, digits, '-' and '_', and must start with a letter or digit."
                .into(),
        );
    }
    if s == PROXY_PROVIDER {
        return Err("\"proxy\" is reserved for reverse-proxy sign-in.".into());
    }
    Ok(s.to_owned())
}

/// An issuer URL: http(s), no query or fragment. Kept as typed (apart from surrounding
/// spaces) because it must equal the `issuer` of the discovery document character for
/// character.
pub fn parse_issuer(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("Enter the issuer URL of the provider.".into());
    }
    let url = url::Url::parse(s)
        .map_err(|_| "The issuer must be a full URL, e.g. https://auth.example.com/.".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("The issuer must be an http:// or https:// URL.".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("The issuer URL must not have a query (?…) or a fragment (#…).".into());
    }
    if url.host_str().is_none() {
        return Err("The issuer URL needs a host name.".into());
    }
    Ok(s.to_owned())
}

/// Space- or comma-separated scopes; `openid` is required.
pub fn parse_scopes(raw: &str) -> Result<Vec<String>, String> {
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.split([' ', ',', '\n', '\t']).filter(|s| !s.is_empty()) {
        if s.len() > 100
            || !s
                .chars()
                .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            return Err("Scopes are plain words separated by spaces.".into());
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    if scopes.is_empty() {
        return Ok(default_scopes());
    }
    if !scopes.iter().any(|s| s == "openid") {
        return Err("The scopes must include \"openid\".".into());
    }
    Ok(scopes)
}

pub fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

/// A claim name: a JSON member name of the ID token.
pub fn parse_claim_name(raw: &str, default: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(default.to_owned());
    }
    if s.len() > 64 || !s.chars().all(|c| c.is_ascii_graphic()) {
        return Err("A claim name is a single word such as preferred_username.".into());
    }
    Ok(s.to_owned())
}

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

/// One OpenID provider as the sign-in flow uses it.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<SecretString>,
    pub scopes: Vec<String>,
    pub subject_claim: String,
    pub username_claim: String,
    pub email_claim: String,
    pub policy: Policy,
    pub enabled: bool,
    pub source: Source,
}

impl Provider {
    /// A digest of every connection setting: a sign-in started before a change does not
    /// finish after it, and cached discovery made for other settings is not used.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.issuer.as_str(),
            self.client_id.as_str(),
            self.client_secret
                .as_ref()
                .map_or("", |s| s.expose_secret()),
            &self.scopes.join(" "),
            &self.subject_claim,
            &self.username_claim,
            &self.email_claim,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn is_public_client(&self) -> bool {
        self.client_secret.is_none()
    }
}

/// What an admin typed into the connection step, parsed.
#[derive(Debug, Clone)]
pub struct ProviderInput {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    /// `Keep`: leave the stored secret as it is (the form never shows it).
    pub client_secret: SecretChange,
    pub scopes: Vec<String>,
    pub subject_claim: String,
    pub username_claim: String,
    pub email_claim: String,
    pub policy: Policy,
}

#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    Set(SecretString),
    /// Make it a public client.
    Remove,
}

/// The raw fields of the connection form (or the JSON body), all strings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct ProviderFields {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// "on": the provider has no secret (public client).
    pub public_client: Option<String>,
    pub scopes: String,
    pub subject_claim: String,
    pub username_claim: String,
    pub email_claim: String,
    pub policy: String,
}

impl ProviderFields {
    pub fn parse(&self, is_new: bool) -> Result<ProviderInput, FieldErrors> {
        let mut e = FieldErrors::new();
        let id = e.check("id", parse_provider_id(&self.id));
        let label = match clean_claim(&self.label, 60) {
            Some(l) => Some(l),
            None => id.clone().map(|id| title_case(&id)),
        };
        let issuer = e.check("issuer", parse_issuer(&self.issuer));
        let client_id = e.check(
            "client_id",
            match clean_claim(&self.client_id, 255) {
                Some(c) if !c.contains(char::is_whitespace) => Ok(c),
                Some(_) => Err("The client id has no spaces.".to_owned()),
                None => Err("Enter the client id the provider gave you.".to_owned()),
            },
        );
        let public = self.public_client.as_deref() == Some("on");
        let client_secret = if public {
            SecretChange::Remove
        } else if self.client_secret.is_empty() {
            if is_new {
                e.add(
                    "client_secret",
                    "Enter the client secret, or tick \"public client\" if the provider gave you none.",
                );
            }
            SecretChange::Keep
        } else if self.client_secret.len() > 1000 {
            e.add("client_secret", "The client secret is too long.");
            SecretChange::Keep
        } else {
            SecretChange::Set(SecretString::from(self.client_secret.trim().to_owned()))
        };
        let scopes = e.check("scopes", parse_scopes(&self.scopes));
        let subject_claim = e.check(
            "subject_claim",
            parse_claim_name(&self.subject_claim, "sub"),
        );
        let username_claim = e.check(
            "username_claim",
            parse_claim_name(&self.username_claim, "preferred_username"),
        );
        let email_claim = e.check("email_claim", parse_claim_name(&self.email_claim, "email"));
        let policy = e.check("policy", Policy::parse(&self.policy));
        match (
            id,
            label,
            issuer,
            client_id,
            scopes,
            subject_claim,
            username_claim,
            email_claim,
            policy,
        ) {
            (
                Some(id),
                Some(label),
                Some(issuer),
                Some(client_id),
                Some(scopes),
                Some(subject_claim),
                Some(username_claim),
                Some(email_claim),
                Some(policy),
            ) if e.is_empty() => Ok(ProviderInput {
                id,
                label,
                issuer,
                client_id,
                client_secret,
                scopes,
                subject_claim,
                username_claim,
                email_claim,
                policy,
            }),
            _ => Err(e),
        }
    }
}

fn title_case(id: &str) -> String {
    let mut c = id.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

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
    if m.other_usable_identities > 0 {
        return Ok(UnlinkEffect::Plain);
    }
    if !m.has_password {
        return Err(
            "This is the account's only way to sign in (it has no password): set a password or link another identity first."
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
    fn scopes_need_openid() {
        assert!(parse_scopes("profile email").is_err());
        assert_eq!(
            parse_scopes("openid,profile  openid").ok(),
            Some(vec!["openid".to_owned(), "profile".to_owned()])
        );
        assert_eq!(parse_scopes("").ok(), Some(default_scopes()));
    }

    #[test]
    fn unlinking_keeps_a_way_in() {
        let m = |has_password, local_login, other| SignInMethods {
            has_password,
            local_login,
            other_usable_identities: other,
        };
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
