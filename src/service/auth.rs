//! Signing in with a password, and checking that a session still speaks for its user.

use super::ServiceError;
use super::passwords::PasswordHasher;
use crate::db::{DbPool, audit, users};
use crate::domain::User;

/// Longest identifier recorded in the audit log for a failed attempt.
const MAX_LOGGED_IDENTIFIER: usize = 100;

/// Checks a username-or-email and password. Every failure (no such account, wrong
/// password, an account that may not sign in) returns the same error after the same work:
/// a missing account is checked against a dummy hash.
pub async fn login_with_password(
    db: &DbPool,
    hasher: &PasswordHasher,
    sso: &crate::sso_env::SsoEnv,
    identifier: &str,
    password: &str,
    ip: Option<String>,
) -> Result<User, ServiceError> {
    // Checked before any hashing: when password sign-in is off it costs nothing to refuse.
    if !super::sso::providers::modes(db, sso).await?.local {
        return Err(ServiceError::LocalLoginDisabled);
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
                action: "login.password",
                target: Some(&target),
                ip: ip.as_deref(),
                outcome,
                detail: None,
            },
        )?;
        match user {
            Some(u) if allowed => Ok(u),
            _ => Err(ServiceError::InvalidCredentials),
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
