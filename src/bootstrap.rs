//! Headless bootstrap of the first admin from `HALLPASS_ADMIN_*` environment variables.
//! They are read here only, never stored in the configuration and never logged.

use crate::domain::{Email, Password, Username};
use crate::service::accounts::NewAdmin;

/// Reads the bootstrap variables through `get` (the process environment in production).
/// `Ok(None)` when none is set; an error names the variable and the problem.
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<NewAdmin>, String> {
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
    Ok(Some(NewAdmin {
        username: Username::parse(&username)
            .map_err(|m| format!("HALLPASS_ADMIN_USERNAME: {m}"))?,
        email: email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|m| format!("HALLPASS_ADMIN_EMAIL: {m}"))?,
        password: Password::parse(&password.value)
            .map_err(|m| format!("{}: {m}", password.source))?,
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
    fn short_password_is_an_error() {
        let e = from_env(env(&[
            ("HALLPASS_ADMIN_USERNAME", "root"),
            ("HALLPASS_ADMIN_PASSWORD", "short"),
        ]))
        .err()
        .unwrap_or_default();
        assert!(e.contains("at least 8"), "{e}");
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
        .ok_or("no admin")?;
        assert_eq!(admin.password.expose(), "from-the-file");
        Ok(())
    }
}
