//! API keys as the rest of the code sees them: never the key itself, never its hash.

use super::FieldErrors;

/// Longest key name accepted.
pub const NAME_MAX: usize = 100;
/// Longest expiry accepted, in days (ten years).
pub const EXPIRY_MAX_DAYS: i64 = 3650;

/// A stored key: what it is called and when it was made, used and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the key (`hp_` + 6), so people can tell their keys apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl ApiKey {
    /// Whether the key has run out at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// A key to create, parsed once for the form and the JSON API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub expires_in_days: Option<i64>,
}

impl NewApiKey {
    /// Fields `name` (1–100 characters) and `expires_in_days` (1–3650, or none).
    pub fn parse(name: &str, expires_in_days: Option<i64>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = name.trim();
        if name.is_empty() {
            errors.add(
                "name",
                "Give the key a name, e.g. the script that will use it.",
            );
        } else if name.chars().count() > NAME_MAX {
            errors.add(
                "name",
                format!("The name must be at most {NAME_MAX} characters long."),
            );
        } else if name.chars().any(char::is_control) {
            errors.add("name", "The name cannot contain control characters.");
        }
        if let Some(days) = expires_in_days
            && !(1..=EXPIRY_MAX_DAYS).contains(&days)
        {
            errors.add(
                "expires_in_days",
                format!("Expiry must be between 1 and {EXPIRY_MAX_DAYS} days, or empty for none."),
            );
        }
        errors.into_result()?;
        Ok(Self {
            name: name.to_owned(),
            expires_in_days,
        })
    }

    /// As [`parse`](Self::parse), with the expiry typed into a form (empty = never).
    pub fn parse_form(name: &str, expires_in_days: &str) -> Result<Self, FieldErrors> {
        let days = expires_in_days.trim();
        if days.is_empty() {
            return Self::parse(name, None);
        }
        match days.parse::<i64>() {
            Ok(d) => Self::parse(name, Some(d)),
            Err(_) => {
                let mut errors = Self::parse(name, None).err().unwrap_or_default();
                errors.add(
                    "expires_in_days",
                    "Expiry must be a whole number of days, or empty for none.",
                );
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NewApiKey;

    #[test]
    fn names_and_expiry_are_checked() {
        assert!(
            NewApiKey::parse(" backup script ", Some(30)).is_ok_and(|k| k.name == "backup script")
        );
        assert!(NewApiKey::parse("", None).is_err_and(|e| e.get("name").is_some()));
        assert!(NewApiKey::parse("x", Some(0)).is_err_and(|e| e.get("expires_in_days").is_some()));
        assert!(NewApiKey::parse_form("x", "").is_ok_and(|k| k.expires_in_days.is_none()));
        let both = NewApiKey::parse_form("", "soon").err().unwrap_or_default();
        assert!(both.get("name").is_some() && both.get("expires_in_days").is_some());
    }
}
