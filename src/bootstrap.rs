//! Headless bootstrap of the first admin from `HALLPASS_ADMIN_*` environment variables.
//! They are read here only, never stored in the configuration and never logged.

use crate::domain::{Email, Password, Username};
use crate::secret::EnvSecret;
use crate::service::accounts::NewAdmin;

/// The variables as set, checked only for being complete. Their values are checked by
/// [`BootstrapAdmin::parse`] when they are used, on a database without accounts: the
/// variables are one-shot, and a value that will be ignored (a later start, a stricter rule
/// since) must not keep the server from starting. Checking an email address also compiles
/// the email rule's regular expressions, ~0.6 MB of code and heap that an instance which
/// never creates an account from them should not carry (issue 12 point 5).
pub struct BootstrapAdmin {
    username: String,
    email: Option<String>,
    password: EnvSecret,
}

impl BootstrapAdmin {
    /// The first admin, or what is wrong with a variable (naming it, never showing the
    /// password).
    pub fn parse(&self) -> Result<NewAdmin, String> {
        Ok(NewAdmin {
            username: Username::parse(&self.username)
                .map_err(|m| format!("HALLPASS_ADMIN_USERNAME: {m}"))?,
            email: self
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|m| format!("HALLPASS_ADMIN_EMAIL: {m}"))?,
            password: Password::parse(&self.password.value)
                .map_err(|m| format!("{}: {m}", self.password.source))?,
        })
    }
}

/// Reads the bootstrap variables through `get` (the process environment in production).
/// `Ok(None)` when none is set; an error names the variable that is missing.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<BootstrapAdmin>, String> {
    let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    let username = non_empty("HALLPASS_ADMIN_USERNAME");
    let email = non_empty("HALLPASS_ADMIN_EMAIL");
    // HALLPASS_ADMIN_PASSWORD_FILE wins over the variable, as for every secret.
    let password = crate::secret::env_or_file(&get, "HALLPASS_ADMIN_PASSWORD")?;
    let Some(username) = username else {
        if password.is_some() || email.is_some() {
            return Err("HALLPASS_ADMIN_PASSWORD/HALLPASS_ADMIN_EMAIL are set but HALLPASS_ADMIN_USERNAME is not: set the admin's username too".into());
        }
        return Ok(None);
    };
    let Some(password) = password else {
        return Err("HALLPASS_ADMIN_USERNAME is set but neither HALLPASS_ADMIN_PASSWORD nor HALLPASS_ADMIN_PASSWORD_FILE is: give the first admin a password".into());
    };
    Ok(Some(BootstrapAdmin {
        username,
        email,
        password,
    }))
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
    fn nothing_set_means_no_bootstrap() {
        assert!(matches!(from_env(env(&[])), Ok(None)));
    }

    #[test]
    fn username_without_password_is_an_error() {
        let e = from_env(env(&[("HALLPASS_ADMIN_USERNAME", "root")]))
            .err()
            .unwrap_or_default();
        assert!(e.contains("HALLPASS_ADMIN_PASSWORD"), "{e}");
    }

    #[test]
    fn values_are_checked_when_parsed_and_name_their_variable() -> Result<(), String> {
        let admin = from_env(env(&[
            ("HALLPASS_ADMIN_USERNAME", "root"),
            ("HALLPASS_ADMIN_PASSWORD", "short"),
        ]))?
        .ok_or("no admin")?;
        let e = admin.parse().err().unwrap_or_default();
        assert!(
            e.contains("HALLPASS_ADMIN_PASSWORD: Password must be at least 8"),
            "{e}"
        );
        assert!(!e.contains("short"), "the password is never shown: {e}");
        let admin = from_env(env(&[
            ("HALLPASS_ADMIN_USERNAME", "root"),
            ("HALLPASS_ADMIN_PASSWORD", "long enough password"),
            ("HALLPASS_ADMIN_EMAIL", "not an address"),
        ]))?
        .ok_or("no admin")?;
        let e = admin.parse().err().unwrap_or_default();
        assert!(e.starts_with("HALLPASS_ADMIN_EMAIL: "), "{e}");
        Ok(())
    }

    #[test]
    fn password_file_wins_and_loses_its_newline() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-the-file\n")?;
        let admin = from_env(env(&[
            ("HALLPASS_ADMIN_USERNAME", "root"),
            ("HALLPASS_ADMIN_PASSWORD", "from-the-variable"),
            (
                "HALLPASS_ADMIN_PASSWORD_FILE",
                path.to_str().unwrap_or_default(),
            ),
        ]))?
        .ok_or("no admin")?
        .parse()?;
        assert_eq!(admin.password.expose(), "from-the-file");
        Ok(())
    }
}
