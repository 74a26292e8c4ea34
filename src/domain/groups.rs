//! Groups of users: admin-managed, optionally filled from a sign-in source's groups claim.
//!
//! A membership remembers who made it (`source`): `admin` for an administrator, else the
//! sign-in source whose groups claim did (`proxy` or an OIDC provider id). A claim refreshes
//! only its own memberships at each sign-in ([`claim_changes`]); an administrator's are
//! never touched by a sign-in.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use super::FieldErrors;
use super::user::Status;

/// The `source` of a membership an administrator made.
pub const ADMIN_SOURCE: &str = "admin";

/// Longest group description.
pub const DESCRIPTION_MAX: usize = 200;

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

/// The key a name sent by a sign-in source is compared by (the same as [`GroupName::key`]).
pub fn name_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// What an admin typed for a group (the form, or the JSON body), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInput {
    pub name: GroupName,
    pub description: Option<String>,
}

impl GroupInput {
    /// Checks both fields, reporting every problem at once (keyed `name`, `description`).
    pub fn parse(name: &str, description: &str) -> Result<GroupInput, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", GroupName::parse(name));
        let description = description.trim();
        if description.chars().count() > DESCRIPTION_MAX {
            errors.add(
                "description",
                format!("A description has at most {DESCRIPTION_MAX} characters."),
            );
        }
        if description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            errors.add(
                "description",
                "A description cannot contain control characters.",
            );
        }
        match name {
            Some(name) if errors.is_empty() => Ok(GroupInput {
                name,
                description: (!description.is_empty()).then(|| description.to_owned()),
            }),
            _ => Err(errors),
        }
    }
}

/// A group as the screens and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: i64,
    /// Unique regardless of case; 1–64 characters, no comma.
    pub name: String,
    /// Null when there is none.
    #[schema(required = true)]
    pub description: Option<String>,
    /// How many accounts are members.
    pub members: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = GroupMember)]
pub struct Member {
    pub user_id: i64,
    pub username: String,
    /// Null when the account has none.
    #[schema(required = true)]
    pub display_name: Option<String>,
    pub status: Status,
    /// The account is soft-deleted (it stays a member until it is purged).
    pub deleted: bool,
    /// `admin`, or the sign-in source whose groups claim made the membership.
    pub source: String,
    /// When the membership was made (unix seconds).
    pub added_at: i64,
}

impl Member {
    /// Whether a sign-in refreshes this membership (it came from a groups claim).
    pub fn from_claim(&self) -> bool {
        self.source != ADMIN_SOURCE
    }
}

/// The memberships one sign-in makes and ends, from the names its groups claim sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimChanges {
    /// Groups to join, with `source` = the claim's source.
    pub add: Vec<i64>,
    /// Groups the source had given and the claim no longer names.
    pub remove: Vec<i64>,
}

impl ClaimChanges {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// What signing in with a groups claim changes. `claimed`: the names the source sent;
/// `existing`: the groups whose key (see [`name_key`]) is among them, as (id, key);
/// `current`: the user's memberships as (group id, source). Names of groups that do not
/// exist are ignored (a claim never creates a group); a membership another source or an
/// administrator made is left as it is, whether the claim names its group or not.
pub fn claim_changes(
    source: &str,
    claimed: &[String],
    existing: &[(i64, String)],
    current: &[(i64, String)],
) -> ClaimChanges {
    let wanted_keys: BTreeSet<String> = claimed.iter().map(|n| name_key(n)).collect();
    let wanted: BTreeSet<i64> = existing
        .iter()
        .filter(|(_, key)| wanted_keys.contains(key))
        .map(|(id, _)| *id)
        .collect();
    let member: HashMap<i64, &str> = current.iter().map(|(id, s)| (*id, s.as_str())).collect();
    let add = wanted
        .iter()
        .filter(|id| !member.contains_key(id))
        .copied()
        .collect();
    let mut remove: Vec<i64> = current
        .iter()
        .filter(|(id, s)| s == source && !wanted.contains(id))
        .map(|(id, _)| *id)
        .collect();
    remove.sort_unstable();
    ClaimChanges { add, remove }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(GroupName::parse("  Family ").unwrap().as_str(), "Family");
        assert_eq!(GroupName::parse("Family").unwrap().key(), "family");
        assert!(GroupName::parse("").is_err());
        assert!(GroupName::parse("a,b").is_err());
        assert!(GroupName::parse("a\nb").is_err());
        assert!(GroupName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn input_reports_both_fields() {
        let ok = GroupInput::parse(" Media ", "  ").unwrap();
        assert_eq!((ok.name.as_str(), ok.description), ("Media", None));
        let bad = GroupInput::parse("", &"d".repeat(201)).unwrap_err();
        assert!(bad.get("name").is_some() && bad.get("description").is_some());
        assert!(GroupInput::parse("ok", "line\u{1b}[31m").is_err());
        assert!(GroupInput::parse("ok", "two\nlines").is_ok());
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn a_claim_adds_and_removes_only_its_own_memberships() {
        let existing = vec![(1, "family".to_owned()), (2, "media".to_owned())];
        // Already in 3 by the admin, in 4 by the proxy; the claim names Family, MEDIA, ghosts.
        let current = vec![(3, "admin".to_owned()), (4, "proxy".to_owned())];
        let c = claim_changes(
            "proxy",
            &s(&["Family", "MEDIA", "ghosts"]),
            &existing,
            &current,
        );
        assert_eq!(
            c,
            ClaimChanges {
                add: vec![1, 2],
                remove: vec![4]
            }
        );
        // An admin-made membership of a claimed group is kept and not duplicated; another
        // source's membership is not taken over or removed.
        let current = vec![(1, "admin".to_owned()), (2, "authelia".to_owned())];
        let c = claim_changes("proxy", &s(&["family", "media"]), &existing, &current);
        assert!(c.is_empty(), "{c:?}");
        let c = claim_changes("proxy", &[], &existing, &current);
        assert!(c.is_empty(), "{c:?}");
    }
}
