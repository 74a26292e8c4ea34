//! Signing in with a password, and checking that a session still speaks for its user.

use super::Refusal;
use super::ServiceError;
use super::passwords::PasswordHasher;
use super::rate_limit::{Action, Attempt, RateLimiter};
use crate::db::{DbPool, audit, users};
use crate::domain::User;
use crate::domain::audit::AuditAction;
use std::net::IpAddr;

/// Longest identifier recorded in the audit log for a failed attempt.
const MAX_LOGGED_IDENTIFIER: usize = 100;

/// Signs in with a password, counted by the rate limiter: over the limit nothing is looked up
/// or hashed and the answer is [`ServiceError::RateLimited`]. What both front ends call.
pub async fn sign_in(
    db: &DbPool,
    hasher: &PasswordHasher,
    limiter: &RateLimiter,
    config: &crate::config::Config,
    identifier: &str,
    password: &str,
    ip: IpAddr,
) -> Result<User, ServiceError> {
    let attempt = Attempt::new(Action::Login, ip, Some(identifier));
    let check = login_with_password(
        db,
        hasher,
        config,
        identifier,
        password,
        Some(ip.to_string()),
    );
    limiter.guard(attempt, check).await
}

/// Checks a username-or-email and password, without the rate limit (see [`sign_in`]). Every failure (no such account, wrong
/// password, an account that may not sign in) returns the same error after the same work:
/// a missing account is checked against a dummy hash.
pub async fn login_with_password(
    db: &DbPool,
    hasher: &PasswordHasher,
    config: &crate::config::Config,
    identifier: &str,
    password: &str,
    ip: Option<String>,
) -> Result<User, ServiceError> {
    if let Some(bg) = &config.env_auth.break_glass
        && crate::env_auth::BreakGlass::is_username(identifier)
    {
        return break_glass_login(db, hasher, bg, password, ip).await;
    }
    // Checked before any hashing: when password sign-in is off it costs nothing to refuse.
    if !super::sso::providers::modes(db, &config.sso).await?.local {
        return Err(ServiceError::Refused(Refusal::LocalLoginDisabled));
    }
    let key = identifier.trim().to_lowercase();
    let lookup = key.clone();
    let user = db
        .run(move |conn| users::find_by_login(conn, &lookup))
        .await?;
    let verified = hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let allowed = verified.ok && user.as_ref().is_some_and(User::may_sign_in);
    let rehash = verified.rehash;
    db.run(move |conn| {
        let outcome = if allowed { "success" } else { "failure" };
        let target: String = match &user {
            Some(u) => u.username.clone(),
            None => key.chars().take(MAX_LOGGED_IDENTIFIER).collect(),
        };
        let actor_id = user.as_ref().filter(|_| allowed).map(|u| u.id);
        if let (Some(u), true) = (&user, allowed) {
            users::record_login(conn, u.id, rehash.as_deref())?;
        }
        audit::insert(
            conn,
            &audit::NewEvent {
                actor_id,
                actor: if allowed { &target } else { "anonymous" },
                action: AuditAction::LoginPassword,
                target: Some(&target),
                ip: ip.as_deref(),
                outcome,
                detail: None,
            },
        )?;
        match user {
            Some(u) if allowed => Ok(u),
            _ => Err(ServiceError::Refused(Refusal::InvalidCredentials)),
        }
    })
    .await
}

/// The user a session belongs to, if the session is still valid for them: the account
/// exists, is active, and its `session_version` has not moved since sign-in.
pub async fn session_user(
    db: &DbPool,
    user_id: i64,
    session_version: i64,
) -> Result<Option<User>, ServiceError> {
    let user = db.run(move |conn| users::find_by_id(conn, user_id)).await?;
    Ok(user.filter(|u| u.accepts_session(session_version)))
}

/// The built-in break-glass admin: `admin` with `HALLPASS_ADMIN_KEY` as its password. It
/// works whatever the sign-in switches say (that is its purpose), costs the same hash as any
/// other attempt, and is audited.
async fn break_glass_login(
    db: &DbPool,
    hasher: &PasswordHasher,
    bg: &crate::env_auth::BreakGlass,
    password: &str,
    ip: Option<String>,
) -> Result<User, ServiceError> {
    // Same work as a password check, so timing does not tell this account apart.
    hasher.verify(password, None).await?;
    let ok = bg.accepts(password);
    db.run(move |conn| {
        audit::insert(
            conn,
            &audit::NewEvent {
                actor_id: None,
                actor: if ok {
                    "admin (break-glass)"
                } else {
                    "anonymous"
                },
                action: AuditAction::LoginBreakGlass,
                target: Some(crate::env_auth::BREAK_GLASS_USERNAME),
                ip: ip.as_deref(),
                outcome: if ok { "success" } else { "failure" },
                detail: None,
            },
        )
    })
    .await?;
    if ok {
        tracing::warn!("the break-glass admin (HALLPASS_ADMIN_KEY) signed in");
        Ok(bg.user())
    } else {
        Err(ServiceError::Refused(Refusal::InvalidCredentials))
    }
}
