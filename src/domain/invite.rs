//! Invite links: what an admin asks for ([`NewInvite`], parsed once for the form and the
//! JSON API) and what a stored invite is ([`Invite`], with its [`InviteState`]). Never the
//! token, never its hash.

use serde::Serialize;

use super::{Email, FieldErrors, Role, Username};

/// Days an invite stays open when the admin names none.
pub const DEFAULT_EXPIRY_DAYS: i64 = 7;
/// Longest expiry accepted, in days: an invite is a password-less way in, so it is short-lived.
pub const MAX_EXPIRY_DAYS: i64 = 90;

/// An invite to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvite {
    /// Fills in the sign-up form's email (the invitee may change it).
    pub email: Option<Email>,
    /// Fills in the sign-up form's username (the invitee may change it).
    pub username: Option<Username>,
    pub role: Role,
    /// Ids of the groups the new account joins (checked to exist by the service).
    pub groups: Vec<i64>,
    pub expires_in_days: i64,
    /// The new account waits for an administrator's approval (`pending`) instead of being
    /// `active` at once.
    pub needs_approval: bool,
}

/// The raw fields of an invite, as a form or a JSON body gives them.
#[derive(Debug, Clone, Default)]
pub struct InviteFields<'a> {
    pub email: &'a str,
    pub username: &'a str,
    pub role: &'a str,
    pub groups: Vec<i64>,
    /// `None`: the default ([`DEFAULT_EXPIRY_DAYS`]).
    pub expires_in_days: Option<i64>,
    pub needs_approval: bool,
}

impl NewInvite {
    /// Parses every field, reporting every problem at once, keyed by field.
    pub fn parse(f: InviteFields<'_>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse_optional(f.email));
        let username = if f.username.trim().is_empty() {
            Some(None)
        } else {
            errors.check("username", Username::parse(f.username).map(Some))
        };
        let role = errors.check(
            "role",
            f.role
                .trim()
                .parse::<Role>()
                .map_err(|_| "Choose a role: admin, user or viewer.".to_owned()),
        );
        let days = f.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS);
        if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
            errors.add(
                "expires_in_days",
                format!("Expiry must be between 1 and {MAX_EXPIRY_DAYS} days."),
            );
        }
        let mut groups = f.groups;
        groups.sort_unstable();
        groups.dedup();
        match (email, username, role) {
            (Some(email), Some(username), Some(role)) if errors.is_empty() => Ok(Self {
                email,
                username,
                role,
                groups,
                expires_in_days: days,
                needs_approval: f.needs_approval,
            }),
            _ => Err(errors),
        }
    }

    /// The expiry as typed into a form: empty means the default, anything else must be a
    /// whole number of days (the message goes by the field).
    pub fn form_days(raw: &str) -> Result<Option<i64>, FieldErrors> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse::<i64>().map(Some).map_err(|_| {
            FieldErrors::single("expires_in_days", "Expiry must be a whole number of days.")
        })
    }
}

/// Where an invite stands. Only an `Open` invite can be used; the others say why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InviteState {
    Open,
    Used,
    Expired,
    Revoked,
}

impl InviteState {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteState::Open => "open",
            InviteState::Used => "used",
            InviteState::Expired => "expired",
            InviteState::Revoked => "revoked",
        }
    }
}

/// A stored invite as the pages and the API show it. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Invite {
    pub id: i64,
    /// Fills in the sign-up form's email (the invitee may change it); null: none.
    #[schema(required = true)]
    pub email: Option<String>,
    /// Fills in the sign-up form's username (the invitee may change it); null: none.
    #[schema(required = true)]
    pub username: Option<String>,
    /// The new account's role.
    pub role: Role,
    /// The new account waits for an administrator's approval (`pending`).
    pub needs_approval: bool,
    /// The groups the new account joins, by name.
    pub groups: Vec<InviteGroup>,
    /// The admin who made it (null: purged since).
    #[schema(required = true)]
    pub created_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Null until used.
    #[schema(required = true)]
    pub used_at: Option<i64>,
    /// The username of the account made with it (null: not used, or purged since).
    #[schema(required = true)]
    pub used_by: Option<String>,
    /// The id of the account made with it (null: not used, or purged since).
    #[schema(required = true)]
    pub used_by_id: Option<i64>,
    /// Null unless revoked.
    #[schema(required = true)]
    pub revoked_at: Option<i64>,
}

/// A group an invite names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InviteGroup {
    pub id: i64,
    pub name: String,
}

impl Invite {
    /// The state at `now` (unix seconds). Used and revoked win over expired: they say what
    /// happened, not only that time passed.
    pub fn state(&self, now: i64) -> InviteState {
        if self.used_at.is_some() {
            InviteState::Used
        } else if self.revoked_at.is_some() {
            InviteState::Revoked
        } else if self.expires_at <= now {
            InviteState::Expired
        } else {
            InviteState::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> InviteFields<'static> {
        InviteFields {
            role: "user",
            ..InviteFields::default()
        }
    }

    #[test]
    fn defaults_and_hints() {
        let i = NewInvite::parse(fields()).unwrap();
        assert_eq!(i.expires_in_days, DEFAULT_EXPIRY_DAYS);
        assert!(i.email.is_none() && i.username.is_none());
        let i = NewInvite::parse(InviteFields {
            email: " kim@example.com ",
            username: "Kim",
            groups: vec![3, 1, 3],
            ..fields()
        })
        .unwrap();
        assert_eq!(
            i.email.map(|e| e.as_str().to_owned()),
            Some("kim@example.com".into())
        );
        assert_eq!(i.groups, vec![1, 3]);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let e = NewInvite::parse(InviteFields {
            email: "nope",
            username: "_x",
            role: "owner",
            expires_in_days: Some(0),
            ..InviteFields::default()
        })
        .unwrap_err();
        for f in ["email", "username", "role", "expires_in_days"] {
            assert!(e.get(f).is_some(), "{f}");
        }
        assert!(
            NewInvite::parse(InviteFields {
                expires_in_days: Some(MAX_EXPIRY_DAYS + 1),
                ..fields()
            })
            .is_err()
        );
        assert!(NewInvite::form_days("soon").is_err());
        assert_eq!(NewInvite::form_days(" ").ok(), Some(None));
    }

    #[test]
    fn states() {
        let mut i = Invite {
            id: 1,
            email: None,
            username: None,
            role: Role::User,
            needs_approval: false,
            groups: vec![],
            created_by: None,
            created_at: 0,
            expires_at: 100,
            used_at: None,
            used_by: None,
            used_by_id: None,
            revoked_at: None,
        };
        assert_eq!(i.state(99), InviteState::Open);
        assert_eq!(i.state(100), InviteState::Expired);
        i.revoked_at = Some(50);
        assert_eq!(i.state(200), InviteState::Revoked);
        i.used_at = Some(40);
        assert_eq!(i.state(200), InviteState::Used);
    }
}
