//! Creating accounts and changing passwords.

use super::passwords::PasswordHasher;
use super::rate_limit::{Action, Attempt, RateLimiter};
use super::{Actor, Missing, Refusal, ServiceError};
use crate::db::{self, DbPool, audit, sessions, users};
use crate::domain::audit::AuditAction;
use crate::domain::{Email, FieldErrors, Password, Role, Status, User, Username};
use std::net::IpAddr;

/// The first admin, as entered in the setup wizard or the bootstrap variables.
#[derive(Debug)]
pub struct NewAdmin {
    pub username: Username,
    pub email: Option<Email>,
    pub password: Password,
}

impl NewAdmin {
    /// Parses the wizard's fields; every problem is reported at once, keyed by field.
    pub fn parse(
        username: &str,
        email: &str,
        password: &str,
        confirm: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(username));
        let email = errors.check("email", Email::parse_optional(email));
        let fields = ("password", "password_confirm");
        let password = Password::check_confirmed(password, confirm, fields, &mut errors);
        match (username, email, password) {
            (Some(username), Some(email), Some(password)) if errors.is_empty() => Ok(Self {
                username,
                email,
                password,
            }),
            _ => Err(errors),
        }
    }
}

/// Creates the first admin, but only while there are no users at all. The check and the
/// insert share one locked transaction, so two simultaneous set-ups create one admin.
pub async fn create_first_admin(
    db: &DbPool,
    hasher: &PasswordHasher,
    new: NewAdmin,
    actor: Actor,
) -> Result<User, ServiceError> {
    // Hash outside the transaction: the write lock is held for milliseconds, not 50 ms.
    let hash = hasher.hash(new.password.expose()).await?;
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if users::count(conn)? > 0 {
                return Err(ServiceError::Refused(Refusal::AlreadySetUp));
            }
            if users::name_reserved(conn, &new.username.key())? {
                return Err(ServiceError::Validation(FieldErrors::single(
                    "username",
                    "\"admin\" is reserved for the built-in break-glass admin (HALLPASS_ADMIN_KEY): choose another username.",
                )));
            }
            let user = users::insert(
                conn,
                &users::NewUser {
                    username: &new.username,
                    email: new.email.as_ref(),
                    display_name: None,
                    role: Role::Admin,
                    status: Status::Active,
                    password_hash: Some(&hash),
                    created_by: None,
                },
            )?;
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SetupFirstAdmin,
                    target: Some(&user.username),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: None,
                },
            )?;
            db::settings::clear_setup_code(conn)?;
            Ok(user)
        })
    })
    .await
}

/// A password change asked for by the user: needs the current password; ends every
/// session of the user, the current one included. Counted by the rate limiter (a wrong
/// current password is a failed guess).
#[allow(
    clippy::too_many_arguments,
    reason = "each is a distinct input of the change"
)]
pub async fn change_own_password(
    db: &DbPool,
    hasher: &PasswordHasher,
    limiter: &RateLimiter,
    actor: Actor,
    user: &User,
    current: &str,
    new: &str,
    confirm: &str,
) -> Result<(), ServiceError> {
    let ip = actor
        .ip
        .as_deref()
        .and_then(|s| s.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let ip_text = actor.ip.clone();
    let attempt = Attempt::new(Action::PasswordChange, ip, Some(&user.username)).by(actor);
    let change = change_password_checked(db, hasher, user, current, new, confirm, ip_text);
    limiter.guard(attempt, change).await
}

async fn change_password_checked(
    db: &DbPool,
    hasher: &PasswordHasher,
    user: &User,
    current: &str,
    new: &str,
    confirm: &str,
    ip: Option<String>,
) -> Result<(), ServiceError> {
    if user.id == crate::env_auth::BREAK_GLASS_ID {
        return Err(Refusal::BreakGlassPassword.into());
    }
    let mut errors = FieldErrors::new();
    let fields = ("new_password", "new_password_confirm");
    let new_password = Password::check_confirmed(new, confirm, fields, &mut errors);
    let verified = hasher
        .verify(current, user.password_hash.as_deref())
        .await?;
    if !verified.ok {
        errors.add("current_password", "The current password is not correct.");
    }
    let Some(new_password) = new_password.filter(|_| errors.is_empty()) else {
        return Err(ServiceError::Validation(errors));
    };
    let hash = hasher.hash(new_password.expose()).await?;
    let (user_id, username) = (user.id, user.username.clone());
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            users::set_password(conn, user_id, &hash)?;
            sessions::delete_for_user(conn, user_id)?;
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: Some(user_id),
                    actor: &username,
                    action: AuditAction::PasswordChange,
                    target: Some(&username),
                    ip: ip.as_deref(),
                    outcome: "success",
                    detail: None,
                },
            )
            .map_err(ServiceError::from)
        })
    })
    .await
}

/// An account someone asks for at `/register`: the same fields and rules as the wizard's.
#[derive(Debug)]
pub struct Registration {
    pub username: Username,
    pub email: Option<Email>,
    pub password: Password,
}

impl Registration {
    /// Parses the form; every problem is reported at once, keyed by field.
    pub fn parse(
        username: &str,
        email: &str,
        password: &str,
        confirm: &str,
    ) -> Result<Self, FieldErrors> {
        NewAdmin::parse(username, email, password, confirm).map(|a| Self {
            username: a.username,
            email: a.email,
            password: a.password,
        })
    }
}

/// Self-registration: creates a `user` account, `pending` (or `active` when the instance
/// approves new accounts automatically), audited as `user.register`. Refused with
/// [`ServiceError::Refused(Refusal::NotFound(Missing::Endpoint))`] while registration is off; the setting is read again
/// inside the locked transaction, so an admin closing registration wins over a form in flight.
pub async fn register(
    db: &DbPool,
    hasher: &PasswordHasher,
    limiter: &RateLimiter,
    new: Registration,
    ip: IpAddr,
) -> Result<User, ServiceError> {
    let username = new.username.to_string();
    let attempt = Attempt::new(Action::Register, ip, Some(&username));
    limiter
        .guard(attempt, register_now(db, hasher, new, Some(ip.to_string())))
        .await
}

async fn register_now(
    db: &DbPool,
    hasher: &PasswordHasher,
    new: Registration,
    ip: Option<String>,
) -> Result<User, ServiceError> {
    // Cheap check first: a closed instance spends no hash on the request.
    if !db.run(db::settings::get).await?.registration_enabled {
        return Err(ServiceError::Refused(Refusal::NotFound(Missing::Endpoint)));
    }
    let hash = hasher.hash(new.password.expose()).await?;
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let settings = db::settings::get(conn)?;
            if !settings.registration_enabled {
                return Err(ServiceError::Refused(Refusal::NotFound(Missing::Endpoint)));
            }
            let profile = super::admin::Profile {
                username: new.username,
                email: new.email,
                display_name: None,
                role: Role::User,
            };
            super::admin::taken_errors(conn, None, &profile)?;
            let status = if settings.auto_approve_registrations {
                Status::Active
            } else {
                Status::Pending
            };
            let user = users::insert(
                conn,
                &users::NewUser {
                    username: &profile.username,
                    email: profile.email.as_ref(),
                    display_name: None,
                    role: Role::User,
                    status,
                    password_hash: Some(&hash),
                    created_by: None,
                },
            )?;
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: Some(user.id),
                    actor: &user.username,
                    action: AuditAction::UserRegister,
                    target: Some(&user.username),
                    ip: ip.as_deref(),
                    outcome: "success",
                    detail: Some(&format!("status={status}")),
                },
            )?;
            Ok(user)
        })
    })
    .await
}

/// The development bypass's admin (`HALLPASS_AUTH_BYPASS`): found by its reserved name or
/// created active, without a password.
pub async fn ensure_dev_admin(db: &DbPool) -> Result<User, ServiceError> {
    db.run(|conn| {
        db::write_tx(conn, |conn| {
            let key = crate::env_auth::DEV_ADMIN_USERNAME;
            if let Some(u) = users::find_by_login(conn, key)? {
                return Ok(u);
            }
            let username = Username::parse(key)
                .map_err(|m| ServiceError::Validation(FieldErrors::single("username", m)))?;
            let user = users::insert(
                conn,
                &users::NewUser {
                    username: &username,
                    email: None,
                    display_name: Some("Development admin"),
                    role: Role::Admin,
                    status: Status::Active,
                    password_hash: None,
                    created_by: None,
                },
            )?;
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: None,
                    actor: "bypass",
                    action: AuditAction::UserCreate,
                    target: Some(key),
                    ip: None,
                    outcome: "success",
                    detail: Some("development bypass admin (HALLPASS_AUTH_BYPASS)"),
                },
            )?;
            Ok(user)
        })
    })
    .await
}
