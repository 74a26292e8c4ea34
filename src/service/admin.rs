//! User administration: every change an admin makes to an account, for the HTML table and
//! the JSON API alike. Each runs in one locked transaction that re-reads the target, checks
//! the rules of `domain::policy`, writes, and records an audit event.

use super::Missing;
use crate::domain::audit::AuditAction;
use rand::Rng;

use super::passwords::PasswordHasher;
use super::{Actor, ServiceError};
use crate::db::{self, DbPool, sessions, users};
use crate::domain::policy::{self, AdminAction, Standing};
use crate::domain::{Email, FieldErrors, Password, Role, Status, User, Username};

/// The editable fields of an account, parsed once for both front ends.
#[derive(Debug, Clone)]
pub struct Profile {
    pub username: Username,
    pub email: Option<Email>,
    pub display_name: Option<String>,
    pub role: Role,
}

/// Longest display name accepted.
pub const DISPLAY_NAME_MAX: usize = 100;

impl Profile {
    pub fn parse(
        username: &str,
        email: &str,
        display_name: &str,
        role: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(username));
        let email = errors.check("email", Email::parse_optional(email));
        let display_name = display_name.trim();
        if display_name.chars().count() > DISPLAY_NAME_MAX {
            errors.add(
                "display_name",
                format!("Display name must be at most {DISPLAY_NAME_MAX} characters long."),
            );
        }
        if display_name.chars().any(char::is_control) {
            errors.add(
                "display_name",
                "Display name cannot contain control characters.",
            );
        }
        let role = errors.check(
            "role",
            role.parse::<Role>()
                .map_err(|_| "Role must be admin, user or viewer.".to_owned()),
        );
        match (username, email, role) {
            (Some(username), Some(email), Some(role)) if errors.is_empty() => Ok(Self {
                username,
                email,
                display_name: (!display_name.is_empty()).then(|| display_name.to_owned()),
                role,
            }),
            _ => Err(errors),
        }
    }
}

/// Parses a new account's fields and its first password (`None` = generate one), reporting
/// every problem at once. Shared by the HTML form and the JSON API.
pub fn parse_new_user(
    username: &str,
    email: &str,
    display_name: &str,
    role: &str,
    password: Option<&str>,
) -> Result<(Profile, InitialPassword), FieldErrors> {
    let profile = Profile::parse(username, email, display_name, role);
    let mut errors = profile.as_ref().err().cloned().unwrap_or_default();
    let password = match password {
        Some(p) => errors
            .check("password", Password::parse(p))
            .map(InitialPassword::Given),
        None => Some(InitialPassword::Generate),
    };
    match (profile, password) {
        (Ok(profile), Some(password)) => Ok((profile, password)),
        _ => Err(errors),
    }
}

/// How a new account gets its first password.
#[derive(Debug)]
pub enum InitialPassword {
    Given(Password),
    /// Generate a one-time password to show the admin once.
    Generate,
}

/// Refuses a username or email another account (other than `except`) already uses, with the
/// message next to the field. Call inside the locked transaction that writes the account.
pub(crate) fn taken_errors(
    conn: &mut db::Conn,
    except: Option<i64>,
    p: &Profile,
) -> Result<(), ServiceError> {
    let email_key = p.email.as_ref().map(Email::key);
    let (name, email) = users::taken(conn, except, &p.username.key(), email_key.as_deref())?;
    let mut errors = FieldErrors::new();
    if users::name_reserved(conn, &p.username.key())? {
        errors.add(
            "username",
            "\"admin\" is reserved for the built-in break-glass admin (HALLPASS_ADMIN_KEY).",
        );
    } else if name {
        errors.add("username", "This username is already taken.");
    }
    if email {
        errors.add("email", "Another account already uses this email.");
    }
    errors.into_result().map_err(ServiceError::Validation)
}

/// A readable one-time password: 4 groups of 5 characters from an unambiguous alphabet.
fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Creates an active account. Returns the user and, when asked to generate one, the
/// one-time password (shown once, never stored in clear).
pub async fn create_user(
    db: &DbPool,
    hasher: &PasswordHasher,
    actor: Actor,
    profile: Profile,
    password: InitialPassword,
) -> Result<(User, Option<String>), ServiceError> {
    let (clear, generated) = match password {
        InitialPassword::Given(p) => (p.expose().to_owned(), None),
        InitialPassword::Generate => {
            let p = one_time_password();
            (p.clone(), Some(p))
        }
    };
    let hash = hasher.hash(&clear).await?;
    let user = db
        .run(move |conn| {
            db::write_tx(conn, |conn| {
                taken_errors(conn, None, &profile)?;
                let user = users::insert(
                    conn,
                    &users::NewUser {
                        username: &profile.username,
                        email: profile.email.as_ref(),
                        display_name: profile.display_name.as_deref(),
                        role: profile.role,
                        status: Status::Active,
                        password_hash: Some(&hash),
                        created_by: actor.user_id,
                    },
                )?;
                let detail = format!("role={}", user.role);
                let target = Some(user.username.as_str());
                super::audit::record(conn, &actor, AuditAction::UserCreate, target, Some(&detail))?;
                Ok::<_, ServiceError>(user)
            })
        })
        .await?;
    Ok((user, generated))
}

/// A change an admin makes to an existing account.
#[derive(Debug)]
pub enum Change {
    Edit(Profile),
    ResetPassword(Password),
    Disable,
    Enable,
    Approve,
    Reject,
    Delete,
    Restore,
    /// Hard delete; `confirm` must equal the username.
    Purge {
        confirm: String,
    },
}

impl Change {
    fn action(&self) -> AdminAction {
        match self {
            Change::Edit(_) => AdminAction::Edit,
            Change::ResetPassword(_) => AdminAction::ResetPassword,
            Change::Disable => AdminAction::Disable,
            Change::Enable => AdminAction::Enable,
            Change::Approve => AdminAction::Approve,
            Change::Reject => AdminAction::Reject,
            Change::Delete => AdminAction::Delete,
            Change::Restore => AdminAction::Restore,
            Change::Purge { .. } => AdminAction::Purge,
        }
    }
}

/// Applies `change` to account `target_id` on behalf of `actor` (an admin, or a system actor
/// such as the recovery CLI, which has no account of its own). Returns the account as it is
/// afterwards (`None` after a purge).
pub async fn apply(
    db: &DbPool,
    hasher: &PasswordHasher,
    actor: Actor,
    target_id: i64,
    change: Change,
) -> Result<Option<User>, ServiceError> {
    // Account ids start at 1, so a system actor is never "themselves".
    let actor_id = actor.user_id.unwrap_or(0);
    let action = change.action();
    // Hash before taking the write lock.
    let new_hash = match &change {
        Change::ResetPassword(p) => Some(hasher.hash(p.expose()).await?),
        _ => None,
    };
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let target =
                users::find_by_id(conn, target_id)?.ok_or(ServiceError::from(Missing::Account))?;
            let new_role = match &change {
                Change::Edit(p) => Some(p.role),
                _ => None,
            };
            let after = policy::standing_after(Standing::of(&target), action, new_role);
            policy::check_self(actor_id, &target, action, after)?;
            let others = if target.is_active_admin() && !after.is_active_admin() {
                users::count_other_active_admins(conn, target.id)?
            } else {
                1
            };
            policy::check_last_admin(&target, after, others)?;
            let mut detail = None;
            match &change {
                Change::Purge { confirm } => {
                    if target.deleted_at.is_none() {
                        return Err(policy::PolicyError::PurgeNeedsDelete.into());
                    }
                    if confirm.trim() != target.username {
                        return Err(policy::PolicyError::PurgeNotConfirmed.into());
                    }
                    users::purge(conn, target.id)?;
                    super::audit::record(
                        conn,
                        &actor,
                        action.audit(),
                        Some(&target.username),
                        None,
                    )?;
                    return Ok(None);
                }
                Change::Edit(p) => {
                    taken_errors(conn, Some(target.id), p)?;
                    users::set_profile(
                        conn,
                        target.id,
                        &p.username,
                        p.email.as_ref(),
                        p.display_name.as_deref(),
                    )?;
                    if p.role != target.role {
                        detail = Some(format!("role {} -> {}", target.role, p.role));
                    }
                }
                Change::ResetPassword(_) => {
                    if let Some(h) = &new_hash {
                        users::set_password(conn, target.id, h)?;
                    }
                }
                _ => {}
            }
            let deleted_at = if after.deleted {
                Some(target.deleted_at.unwrap_or_else(db::now_ts))
            } else {
                None
            };
            let status_changed = after.status != target.status
                || after.role != target.role
                || after.deleted != target.deleted_at.is_some();
            // `set_password` already bumped the version for a reset.
            let end = policy::ends_sessions(action) && action != AdminAction::ResetPassword;
            if status_changed || end {
                users::set_standing(conn, target.id, after.role, after.status, deleted_at, end)?;
                if detail.is_none() && after.status != target.status {
                    detail = Some(format!("status {} -> {}", target.status, after.status));
                }
            }
            if policy::ends_sessions(action) {
                sessions::delete_for_user(conn, target.id)?;
            }
            super::audit::record(
                conn,
                &actor,
                action.audit(),
                Some(&target.username),
                detail.as_deref(),
            )?;
            Ok(users::find_by_id(conn, target.id)?)
        })
    })
    .await
}
