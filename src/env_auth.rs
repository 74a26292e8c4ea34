//! Ways in that come from the environment only and never touch the configuration file:
//! the development bypass (`HALLPASS_AUTH_BYPASS`) and the built-in break-glass admin
//! (`HALLPASS_ADMIN_KEY`).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::sso::env_flag;
use crate::domain::{Role, Status, User};

/// Shortest accepted `HALLPASS_ADMIN_KEY`.
pub const MIN_ADMIN_KEY: usize = 16;

/// The username of the break-glass admin, reserved (any case) for database users while a
/// key is set.
pub const BREAK_GLASS_USERNAME: &str = "admin";

/// The id of the break-glass admin's synthetic row (never a database id: those start at 1).
pub const BREAK_GLASS_ID: i64 = 0;

/// The username of the development bypass's admin.
pub const DEV_ADMIN_USERNAME: &str = "dev-admin";

#[derive(Clone, Default)]
pub struct EnvAuth {
    /// `HALLPASS_AUTH_BYPASS`: every request is the dev admin.
    pub bypass: bool,
    /// `HALLPASS_ENV=production`.
    pub production: bool,
    /// `HALLPASS_ALLOW_INSECURE_AUTH_BYPASS`: allow the bypass anywhere.
    pub allow_insecure_bypass: bool,
    pub break_glass: Option<BreakGlass>,
}

impl fmt::Debug for EnvAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvAuth")
            .field("bypass", &self.bypass)
            .field("production", &self.production)
            .field("allow_insecure_bypass", &self.allow_insecure_bypass)
            .field("break_glass", &self.break_glass.is_some())
            .finish()
    }
}

impl EnvAuth {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        // HALLPASS_ADMIN_KEY_FILE (a Docker secret, say) wins over the variable.
        let break_glass = match crate::secret::env_or_file(&get, "HALLPASS_ADMIN_KEY")? {
            Some(key) if key.value.chars().count() < MIN_ADMIN_KEY => {
                return Err(format!(
                    "{} must be at least {MIN_ADMIN_KEY} characters long (it is the break-glass admin's password); generate one with `openssl rand -base64 24`",
                    key.source
                ));
            }
            Some(key) => Some(BreakGlass::new(SecretString::from(key.value))),
            None => None,
        };
        Ok(Self {
            bypass: env_flag(get("HALLPASS_AUTH_BYPASS").as_deref()),
            production: get("HALLPASS_ENV")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("production")),
            allow_insecure_bypass: env_flag(get("HALLPASS_ALLOW_INSECURE_AUTH_BYPASS").as_deref()),
            break_glass,
        })
    }

    /// Refuses the bypass where it would be dangerous. `None`: fine to start.
    pub fn bypass_refusal(&self, bind: std::net::SocketAddr) -> Option<String> {
        if !self.bypass || self.allow_insecure_bypass {
            return None;
        }
        if self.production {
            return Some("HALLPASS_AUTH_BYPASS is set while HALLPASS_ENV=production: refusing to start (every visitor would be an admin). Remove HALLPASS_AUTH_BYPASS, or set HALLPASS_ALLOW_INSECURE_AUTH_BYPASS=1 if you really mean it.".into());
        }
        if !crate::config::canonical_ip(bind.ip()).is_loopback() {
            return Some(format!(
                "HALLPASS_AUTH_BYPASS is set but server.bind is {bind}, not a loopback address: refusing to start (every visitor would be an admin). Bind to 127.0.0.1, or set HALLPASS_ALLOW_INSECURE_AUTH_BYPASS=1 if you really mean it."
            ));
        }
        None
    }
}

/// The built-in admin that signs in with `HALLPASS_ADMIN_KEY` and has no database row.
#[derive(Clone)]
pub struct BreakGlass {
    digest: [u8; 32],
    session_version: i64,
}

impl BreakGlass {
    fn new(key: SecretString) -> Self {
        let digest: [u8; 32] = Sha256::digest(key.expose_secret().as_bytes()).into();
        // Derived from the key: rotating the variable ends the account's sessions.
        let mut v = [0u8; 8];
        v.copy_from_slice(&digest[..8]);
        Self {
            digest,
            session_version: i64::from_le_bytes(v) & i64::MAX,
        }
    }

    /// Constant-time comparison (of digests, so the key's length does not leak either).
    pub fn accepts(&self, password: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        bool::from(given.ct_eq(&self.digest))
    }

    pub fn is_username(name: &str) -> bool {
        name.trim().eq_ignore_ascii_case(BREAK_GLASS_USERNAME)
    }

    /// The account as the rest of the program sees it.
    pub fn user(&self) -> User {
        User {
            id: BREAK_GLASS_ID,
            username: BREAK_GLASS_USERNAME.into(),
            email: None,
            display_name: Some("Break-glass admin".into()),
            role: Role::Admin,
            status: Status::Active,
            password_hash: None,
            session_version: self.session_version,
            created_at: 0,
            updated_at: 0,
            last_login_at: None,
            deleted_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_short_admin_key_is_refused() {
        let e = EnvAuth::from_env(env(&[("HALLPASS_ADMIN_KEY", "short")])).err();
        assert!(e.is_some_and(|m| m.contains("at least 16")));
    }

    #[test]
    fn the_key_is_checked_exactly() -> Result<(), String> {
        let a = EnvAuth::from_env(env(&[("HALLPASS_ADMIN_KEY", "0123456789abcdef!")]))?;
        let bg = a.break_glass.ok_or("no break-glass")?;
        assert!(bg.accepts("0123456789abcdef!"));
        assert!(!bg.accepts("0123456789abcdef"));
        assert!(!bg.accepts(""));
        assert!(BreakGlass::is_username(" ADMIN "));
        Ok(())
    }

    #[test]
    fn bypass_is_refused_off_loopback_and_in_production() -> Result<(), String> {
        let on = EnvAuth::from_env(env(&[("HALLPASS_AUTH_BYPASS", "1")]))?;
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], 8700));
        let public = std::net::SocketAddr::from(([0, 0, 0, 0], 8700));
        assert!(on.bypass_refusal(local).is_none());
        assert!(on.bypass_refusal(public).is_some());
        let prod = EnvAuth::from_env(env(&[
            ("HALLPASS_AUTH_BYPASS", "1"),
            ("HALLPASS_ENV", "production"),
        ]))?;
        assert!(prod.bypass_refusal(local).is_some());
        let forced = EnvAuth::from_env(env(&[
            ("HALLPASS_AUTH_BYPASS", "1"),
            ("HALLPASS_ENV", "production"),
            ("HALLPASS_ALLOW_INSECURE_AUTH_BYPASS", "1"),
        ]))?;
        assert!(forced.bypass_refusal(public).is_none());
        Ok(())
    }

    #[test]
    fn the_key_can_come_from_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("admin-key");
        std::fs::write(&path, "0123456789abcdef-from-file\n")?;
        let path = path.to_str().unwrap_or_default();
        let a = EnvAuth::from_env(env(&[
            ("HALLPASS_ADMIN_KEY_FILE", path),
            ("HALLPASS_ADMIN_KEY", "0123456789abcdef-from-variable"),
        ]))?;
        let bg = a.break_glass.ok_or("no break-glass")?;
        assert!(
            bg.accepts("0123456789abcdef-from-file"),
            "the file wins, newline gone"
        );
        assert!(!bg.accepts("0123456789abcdef-from-variable"));
        std::fs::write(path, "short\n")?;
        let e = EnvAuth::from_env(env(&[("HALLPASS_ADMIN_KEY_FILE", path)]))
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("HALLPASS_ADMIN_KEY_FILE must be at least 16"),
            "{e}"
        );
        let e = EnvAuth::from_env(env(&[("HALLPASS_ADMIN_KEY_FILE", "/nonexistent/key")]))
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("HALLPASS_ADMIN_KEY_FILE") && e.contains("/nonexistent/key"),
            "{e}"
        );
        Ok(())
    }
}
