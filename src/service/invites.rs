//! Invite links: an admin makes one (role, groups, hints, expiry), the invitee opens the
//! link and signs up; each link makes one account.
//!
//! The token is `hpi_` + 32 random bytes in base64url, stored only as its HMAC under the
//! server secret, as API keys are (`service::api_keys` explains why a keyed hash is enough
//! for 256 random bits): the link exists only in the answer that creates it.
//!
//! Using an invite runs in one locked transaction (`db::write_tx`) that reads the invite
//! again, checks it is open, creates the account, adds its groups and marks the invite used
//! — so of two sign-ups racing on one link exactly one wins, on SQLite and PostgreSQL alike,
//! and a revoke that commits first stops the sign-up. Both the page and the sign-up are
//! counted by the rate limiter as registration attempts: an unknown token is a failure.
//!
//! The account is made with a password, or with a passkey instead: the browser's answer is
//! verified first (against a ceremony bound to this invite and username), then the same
//! locked write creates the passwordless account and stores its passkey together.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

use super::accounts::Registration;
use super::passkeys::{self, Ceremony};
use super::passwords::PasswordHasher;
use super::rate_limit::{Action, Attempt, RateLimiter};
use super::{Actor, Missing, Refusal, ServiceError};
use crate::config::Config;
use crate::db::{self, Conn, DbPool, groups, invites, settings, users};
use crate::domain::audit::AuditAction;
use crate::domain::invite::{Invite, InviteState, NewInvite};
use crate::domain::passkey::PasskeyName;
use crate::domain::{Email, FieldErrors, Status, User, Username};
use crate::secret::ServerSecret;

/// Every invite token starts with this (easy to recognise in a leak).
pub const TOKEN_PREFIX: &str = "hpi_";
const TOKEN_BYTES: usize = 32;
/// `hpi_` and 43 base64url characters.
const TOKEN_LEN: usize = 4 + 43;
/// Most invites the list shows (newest first).
const LIST_LIMIT: i64 = 200;

/// A new invite and its token, to show once.
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: String,
}

/// Never prints the token.
impl std::fmt::Debug for CreatedInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedInvite")
            .field("invite", &self.invite)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// The clock invite states are read against (unix seconds), for the pages.
pub fn now() -> i64 {
    db::now_ts()
}

fn generate() -> String {
    let mut bytes = [0_u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Only strings shaped like our tokens are worth a database lookup (and safe to put back
/// into a URL or a header).
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token.starts_with(TOKEN_PREFIX)
        && token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Who an invite is for, in the audit log and the list: its hints, else its number.
fn label(invite: &Invite) -> String {
    match (&invite.username, &invite.email) {
        (Some(u), _) => u.clone(),
        (None, Some(e)) => e.clone(),
        (None, None) => format!("invite #{}", invite.id),
    }
}

fn found(conn: &mut Conn, id: i64) -> Result<Invite, ServiceError> {
    invites::find(conn, id)?.ok_or(ServiceError::from(Missing::Invite))
}

/// Makes an invite. Its groups must exist; a username or email hint another account has
/// already is refused by the field (the sign-up would refuse it anyway).
pub async fn create(
    db: &DbPool,
    secret: &ServerSecret,
    actor: Actor,
    new: NewInvite,
) -> Result<CreatedInvite, ServiceError> {
    let token = generate();
    let token_hmac = secret.hmac_hex(token.as_bytes());
    let invite = db
        .run(move |conn| {
            db::write_tx(conn, |conn| {
                check_hints(conn, &new)?;
                let names = groups::names(conn, &new.groups)?;
                if names.len() != new.groups.len() {
                    return Err(ServiceError::Validation(FieldErrors::single(
                        "groups",
                        "A chosen group does not exist (any more): reload the page and choose again.",
                    )));
                }
                let days = new.expires_in_days;
                let id = invites::insert(
                    conn,
                    &invites::NewRow {
                        token_hmac: &token_hmac,
                        email: new.email.as_ref().map(|e| e.as_str()),
                        username: new.username.as_ref().map(|u| u.as_str()),
                        role: new.role,
                        needs_approval: new.needs_approval,
                        created_by: actor.user_id,
                        expires_at: db::now_ts().saturating_add(days.saturating_mul(86_400)),
                        groups: &new.groups,
                    },
                )?;
                let invite = found(conn, id)?;
                let groups: Vec<&str> = invite.groups.iter().map(|g| g.name.as_str()).collect();
                let detail = format!(
                    "id={id} role={} groups={} expires_in={days}d{}",
                    invite.role,
                    if groups.is_empty() { "-".to_owned() } else { groups.join(",") },
                    if invite.needs_approval { " needs_approval" } else { "" },
                );
                let target = label(&invite);
                let action = AuditAction::InviteCreate;
                super::audit::record(conn, &actor, action, Some(&target), Some(&detail))?;
                Ok(invite)
            })
        })
        .await?;
    Ok(CreatedInvite { invite, token })
}

/// Hints that name an existing account's username or email are refused by their field.
fn check_hints(conn: &mut Conn, new: &NewInvite) -> Result<(), ServiceError> {
    let email_key = new.email.as_ref().map(crate::domain::Email::key);
    let name_key = new.username.as_ref().map(crate::domain::Username::key);
    let (name, email) = users::taken(
        conn,
        None,
        name_key.as_deref().unwrap_or(""),
        email_key.as_deref(),
    )?;
    let mut errors = FieldErrors::new();
    if name && name_key.is_some() {
        errors.add("username", "An account with this username exists already.");
    }
    if email {
        errors.add("email", "An account with this email exists already.");
    }
    errors.into_result().map_err(ServiceError::Validation)
}

/// The newest invites first (at most 200), with their state left to the caller's clock.
pub async fn list(db: &DbPool) -> Result<Vec<Invite>, ServiceError> {
    Ok(db.run(|c| invites::list(c, LIST_LIMIT)).await?)
}

/// One invite, or `NotFound(Invite)`.
pub async fn get(db: &DbPool, id: i64) -> Result<Invite, ServiceError> {
    db.run(move |c| found(c, id)).await
}

/// Revokes an invite that is not used or revoked yet (an expired one may be revoked: the
/// list then says so). Audited as `invite.revoke`.
pub async fn revoke(db: &DbPool, actor: Actor, id: i64) -> Result<Invite, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let invite = found(conn, id)?;
            if !invites::revoke(conn, id)? {
                return Err(Refusal::InviteNotOpen(invite.state(db::now_ts())).into());
            }
            let target = label(&invite);
            let detail = format!("id={id}");
            let action = AuditAction::InviteRevoke;
            super::audit::record(conn, &actor, action, Some(&target), Some(&detail))?;
            found(conn, id)
        })
    })
    .await
}

/// The open invite `token` names: `NotFound(Invite)` for an unknown token,
/// `InviteClosed(state)` for one used, expired or revoked.
fn open_invite(conn: &mut Conn, secret_hmac: &str) -> Result<Invite, ServiceError> {
    let invite = invites::find_by_hmac(conn, secret_hmac)?.ok_or(Missing::Invite)?;
    match invite.state(db::now_ts()) {
        InviteState::Open => Ok(invite),
        closed => Err(Refusal::InviteClosed(closed).into()),
    }
}

fn token_hmac(secret: &ServerSecret, token: &str) -> Result<String, ServiceError> {
    if !well_formed(token) {
        return Err(Missing::Invite.into());
    }
    Ok(secret.hmac_hex(token.as_bytes()))
}

/// The invite behind a link someone opened, if it can still be used. Rate-limited as a
/// registration attempt from `ip`: unknown tokens count as failures.
pub async fn check(
    db: &DbPool,
    secret: &ServerSecret,
    limiter: &RateLimiter,
    token: &str,
    ip: IpAddr,
) -> Result<Invite, ServiceError> {
    let attempt = Attempt::new(Action::Register, ip, None);
    let work = async {
        let hmac = token_hmac(secret, token)?;
        db.run(move |c| open_invite(c, &hmac)).await
    };
    limiter.guard(attempt, work).await
}

/// The open invite behind `token`, not counted by the rate limiter: for re-showing the
/// sign-up form after an attempt that was counted already.
pub async fn get_open(
    db: &DbPool,
    secret: &ServerSecret,
    token: &str,
) -> Result<Invite, ServiceError> {
    let hmac = token_hmac(secret, token)?;
    db.run(move |c| open_invite(c, &hmac)).await
}

/// Signs up with an invite: creates the account (the invite's role; `pending` when the
/// invite asks for approval, else `active`), adds it to the invite's groups and marks the
/// invite used, all in one locked transaction. Audited as `invite.accept` by the new
/// account. Rate-limited as a registration from `ip` for the username asked for.
pub async fn accept(
    (db, hasher, secret, limiter): (&DbPool, &PasswordHasher, &ServerSecret, &RateLimiter),
    token: &str,
    new: Registration,
    ip: IpAddr,
) -> Result<User, ServiceError> {
    let username = new.username.to_string();
    let attempt = Attempt::new(Action::Register, ip, Some(&username));
    let work = async {
        let hmac = token_hmac(secret, token)?;
        // Cheap check first: a dead link spends no password hash.
        let check = hmac.clone();
        db.run(move |c| open_invite(c, &check)).await?;
        let hash = hasher.hash(new.password.expose()).await?;
        let account = NewAccount {
            username: new.username,
            email: new.email,
        };
        let ip = Some(ip.to_string());
        db.run(move |conn| {
            db::write_tx(conn, |conn| {
                accept_in(conn, &hmac, account, Some(&hash), ip)
            })
        })
        .await
    };
    limiter.guard(attempt, work).await
}

/// The account a passkey sign-up asks for: a username and an optional email (no password).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub email: Option<Email>,
}

impl NewAccount {
    /// Parses the form's fields with the same rules and messages as every sign-up, and the
    /// passkey's name: every problem at once, keyed by field.
    pub fn parse_with_name(
        username: &str,
        email: &str,
        passkey_name: &str,
    ) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let username = errors.check("username", Username::parse(username));
        let email = errors.check("email", Email::parse_optional(email));
        if let Err(e) = PasskeyName::parse(passkey_name) {
            errors.add("passkey_name", e.summary());
        }
        match (username, email) {
            (Some(username), Some(email)) if errors.is_empty() => Ok(Self { username, email }),
            _ => Err(errors),
        }
    }
}

/// What a passkey sign-up ceremony is bound to: this invite and this username. The invite
/// is named by its token's keyed hash, which never leaves the server (the ceremony waits in
/// the server-side session).
fn subject(hmac: &str, username: &Username) -> String {
    format!("invite:{hmac}:{}", username.key())
}

/// Starts a sign-up with a passkey: checks the invite, the username and email (free?) and
/// the passkey's name before the browser asks the authenticator for anything, then returns
/// the options for `navigator.credentials.create()` and the ceremony to keep, bound to this
/// invite and username. Rate-limited as [`check`] (an unknown token is a failure).
pub async fn start_passkey(
    (db, config, secret, limiter): (&DbPool, &Config, &ServerSecret, &RateLimiter),
    token: &str,
    new: &NewAccount,
    ip: IpAddr,
) -> Result<(serde_json::Value, Ceremony), ServiceError> {
    let attempt = Attempt::new(Action::Register, ip, None);
    let work = async {
        passkeys::availability(config).map_err(Refusal::PasskeysUnavailable)?;
        let hmac = token_hmac(secret, token)?;
        let check = (hmac.clone(), new.clone());
        db.run(move |c| {
            let invite = open_invite(c, &check.0)?;
            let profile = profile(check.1, &invite);
            super::admin::taken_errors(c, None, &profile)
        })
        .await?;
        passkeys::start_sign_up(config, &new.username, subject(&hmac, &new.username))
    };
    limiter.guard(attempt, work).await
}

/// Signs up with an invite and a passkey: the answer is verified against the ceremony
/// (started for this invite and username), then ONE locked write re-checks the invite,
/// creates the account without a password, stores the passkey, marks the invite used and
/// adds the groups (audited as `invite.accept` and `passkey.add`) — any refusal rolls all of
/// it back. Rate-limited as [`accept`].
pub async fn accept_with_passkey(
    (db, config, secret, limiter): (&DbPool, &Config, &ServerSecret, &RateLimiter),
    token: &str,
    (new, name): (NewAccount, &str),
    (ceremony, answer): (Option<Ceremony>, &str),
    ip: IpAddr,
) -> Result<User, ServiceError> {
    let username = new.username.to_string();
    let attempt = Attempt::new(Action::Register, ip, Some(&username));
    let work = async {
        let hmac = token_hmac(secret, token)?;
        let check = hmac.clone();
        db.run(move |c| open_invite(c, &check)).await?;
        let bound = subject(&hmac, &new.username);
        let verified = passkeys::verify_sign_up(config, ceremony, &bound, name, answer)?;
        let ip = Some(ip.to_string());
        db.run(move |conn| {
            db::write_tx(conn, |conn| {
                let user = accept_in(conn, &hmac, new, None, ip.clone())?;
                passkeys::store_in(conn, &actor(&user, ip), user.id, &user.username, &verified)?;
                Ok(user)
            })
        })
        .await
    };
    limiter.guard(attempt, work).await
}

/// The new account as the actor of its own sign-up's audit entries.
fn actor(user: &User, ip: Option<String>) -> Actor {
    Actor {
        user_id: Some(user.id),
        name: user.username.clone(),
        ip,
        session: None,
    }
}

fn profile(new: NewAccount, invite: &Invite) -> super::admin::Profile {
    super::admin::Profile {
        username: new.username,
        email: new.email,
        display_name: None,
        role: invite.role,
    }
}

/// Uses the invite `hmac` names for `new`: with a password hash, or none (the passkey
/// sign-up stores its passkey in the same write). Must run inside `db::write_tx`.
fn accept_in(
    conn: &mut Conn,
    hmac: &str,
    new: NewAccount,
    hash: Option<&str>,
    ip: Option<String>,
) -> Result<User, ServiceError> {
    // Read again under the lock: a sign-up or revoke that committed meanwhile wins.
    let invite = open_invite(conn, hmac)?;
    let profile = profile(new, &invite);
    super::admin::taken_errors(conn, None, &profile)?;
    let status = if invite.needs_approval {
        Status::Pending
    } else {
        Status::Active
    };
    let user = users::insert(
        conn,
        &users::NewUser {
            username: &profile.username,
            email: profile.email.as_ref(),
            display_name: None,
            role: invite.role,
            status,
            password_hash: hash,
            created_by: None,
        },
    )?;
    if !invites::mark_used(conn, invite.id, user.id)? {
        // Cannot happen under the instance lock; never make two accounts from one link.
        return Err(Refusal::InviteClosed(InviteState::Used).into());
    }
    let actor = actor(&user, ip);
    for g in &invite.groups {
        groups::add_member(conn, g.id, user.id, crate::domain::groups::ADMIN_SOURCE)?;
        let detail = format!("{} (invite #{})", g.name, invite.id);
        let action = AuditAction::GroupMemberAdd;
        super::audit::record(conn, &actor, action, Some(&user.username), Some(&detail))?;
    }
    if !invite.groups.is_empty() {
        settings::bump_rules_version(conn)?;
    }
    let how = if hash.is_some() {
        "password"
    } else {
        "passkey"
    };
    let detail = format!(
        "invite #{} role={} status={status} with={how}",
        invite.id, invite.role
    );
    let action = AuditAction::InviteAccept;
    super::audit::record(conn, &actor, action, Some(&user.username), Some(&detail))?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_recognised() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b));
        assert!(!well_formed("hpi_short"));
        assert!(!well_formed(&a.replacen("hpi_", "hp__", 1)));
        assert!(!well_formed(&format!("{}!", &a[..a.len() - 1])));
    }
}
