//! An OpenID provider: its settings as the sign-in flow uses them, and the connection form
//! an admin fills in (or the JSON body, or the environment), parsed field by field.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{PROXY_PROVIDER, Policy, Source, clean_claim};
use crate::domain::FieldErrors;

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
    if s == crate::domain::groups::ADMIN_SOURCE {
        return Err(
            "\"admin\" is reserved: it marks the group memberships administrators make.".into(),
        );
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

/// An optional claim name (the groups claim): empty means "not read".
pub fn parse_optional_claim_name(raw: &str) -> Result<Option<String>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_claim_name(raw, "").map(Some)
}

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
    /// The claim listing the person's groups (`groups`); `None`: groups are not read. Not a
    /// connection setting: it is read at the callback, so it is not in the fingerprint.
    pub groups_claim: Option<String>,
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
    pub groups_claim: Option<String>,
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
    /// Empty: groups are not read from this provider.
    pub groups_claim: String,
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
        let groups_claim = e.check(
            "groups_claim",
            parse_optional_claim_name(&self.groups_claim),
        );
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
            groups_claim,
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
                Some(groups_claim),
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
                groups_claim,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_need_openid() {
        assert!(parse_scopes("profile email").is_err());
        assert_eq!(
            parse_scopes("openid,profile  openid").ok(),
            Some(vec!["openid".to_owned(), "profile".to_owned()])
        );
        assert_eq!(parse_scopes("").ok(), Some(default_scopes()));
    }
}
