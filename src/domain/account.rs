//! Usernames, email addresses and passwords, parsed once ("parse, don't validate").

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use validator::ValidateEmail;

/// A valid username: 2–50 characters, first alphanumeric, then letters, digits, `.`, `_`, `-`.
/// Unique case-insensitively: [`Username::key`] is the lower-cased form stored for look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MIN: usize = 2;
    pub const MAX: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(Self::MIN..=Self::MAX).contains(&len) {
            return Err(format!(
                "Username must be {}–{} characters long.",
                Self::MIN,
                Self::MAX
            ));
        }
        let mut chars = s.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err("Username must start with a letter or a digit.".into());
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(
                "Username may contain only letters, digits, dots, underscores and hyphens.".into(),
            );
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the name.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically valid email address (checked by the validator crate), at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.len() > 254 || !s.validate_email() {
            return Err("Email must be a valid address, like name@example.com.".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// Empty input means "no email".
    pub fn parse_optional(raw: &str) -> Result<Option<Self>, String> {
        if raw.trim().is_empty() {
            Ok(None)
        } else {
            Self::parse(raw).map(Some)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A new password: 8–200 characters, no composition rules (NIST SP 800-63B).
/// Held as a secret so it never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN: usize = 8;
    pub const MAX: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if len < Self::MIN {
            return Err(format!(
                "Password must be at least {} characters long.",
                Self::MIN
            ));
        }
        if len > Self::MAX {
            return Err(format!(
                "Password must be at most {} characters long.",
                Self::MAX
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// A new password and its confirmation, each problem on its own field (`fields`: the
    /// password's and the confirmation's names), all of them at once: a short password
    /// typed differently twice gets both messages in one go, not one per attempt.
    pub fn check_confirmed(
        raw: &str,
        confirm: &str,
        fields: (&'static str, &'static str),
        errors: &mut super::FieldErrors,
    ) -> Option<Self> {
        let parsed = errors.check(fields.0, Self::parse(raw));
        if raw != confirm {
            errors.add(fields.1, "The two passwords do not match.");
            return None;
        }
        parsed
    }

    /// A new password and its confirmation, with the message on the confirmation field.
    pub fn parse_confirmed(raw: &str, confirm: &str) -> Result<Self, (&'static str, String)> {
        let p = Self::parse(raw).map_err(|m| ("password", m))?;
        if raw != confirm {
            return Err(("password_confirm", "The two passwords do not match.".into()));
        }
        Ok(p)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("al").is_ok());
        assert!(Username::parse("a").is_err());
        assert!(Username::parse(&"a".repeat(51)).is_err());
        assert!(Username::parse("_admin").is_err());
        assert!(Username::parse("ad min").is_err());
        assert!(Username::parse("jane.doe-1_x").is_ok());
        assert_eq!(
            Username::parse("  Alice ").map(|u| u.key()),
            Ok("alice".into())
        );
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(200)).is_ok());
        assert!(Password::parse(&"x".repeat(201)).is_err());
        assert!(matches!(
            Password::parse_confirmed("password1", "password2"),
            Err(("password_confirm", _))
        ));
        let mut errors = crate::domain::FieldErrors::new();
        let fields = ("password", "password_confirm");
        assert!(Password::check_confirmed("short", "shorter", fields, &mut errors).is_none());
        assert!(errors.get("password").is_some(), "too short");
        assert!(errors.get("password_confirm").is_some(), "and not the same");
        let mut errors = crate::domain::FieldErrors::new();
        assert!(
            Password::check_confirmed("long enough", "long enough", fields, &mut errors).is_some()
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("not-an-email").is_err());
        assert_eq!(Email::parse_optional("  ").ok(), Some(None));
    }
}
