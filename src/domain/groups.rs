//! Groups of users: admin-managed, optionally filled from a sign-in source's groups claim.

use serde::Serialize;

/// A group name: 1–64 characters, no commas (the `Remote-Groups` header is comma-separated)
/// and no control characters. Unique regardless of case ([`GroupName::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(raw: &str) -> Result<GroupName, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Enter a group name.".into());
        }
        if name.chars().count() > 64 {
            return Err("A group name has at most 64 characters.".into());
        }
        if name.contains(',') {
            return Err("A group name cannot contain a comma (proxies receive groups as a comma-separated list).".into());
        }
        if name.chars().any(char::is_control) {
            return Err("A group name cannot contain control characters.".into());
        }
        Ok(GroupName(name.to_owned()))
    }

    /// The case-insensitive key names are unique by.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group as the screens and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub members: i64,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::GroupName;

    #[test]
    fn names_are_checked() {
        assert_eq!(GroupName::parse("  Family ").unwrap().as_str(), "Family");
        assert_eq!(GroupName::parse("Family").unwrap().key(), "family");
        assert!(GroupName::parse("").is_err());
        assert!(GroupName::parse("a,b").is_err());
        assert!(GroupName::parse("a\nb").is_err());
        assert!(GroupName::parse(&"x".repeat(65)).is_err());
    }
}
