//! The second factor (TOTP, RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step) and its recovery
//! codes: what sign-in asks for after a correct password, enrolment, removal, and the
//! instance's requirement.
//!
//! The secret is sealed under the server secret like a stored OIDC client secret, so a copy
//! of the database alone does not yield codes. Recovery codes are random (50 bits), so an
//! HMAC under the server secret is enough at rest; each works once. A TOTP code works once
//! too: the time step of the last accepted code is stored and only a later step is accepted
//! (one conditional write, so two racing requests cannot both pass).
//!
//! Parts: `enrol` (set up, confirm, remove by the owner), `verify` (the sign-in step, the
//! reset by an admin or the recovery CLI). This file: the requirement, what comes after a
//! password, and the TOTP helpers both use.

mod enrol;
mod verify;

pub use enrol::{Enrolment, confirm, disable, pending, start};
pub use verify::{reset, verify};

use super::{Actor, ServiceError};
use crate::db::{self, DbPool, audit};
use crate::domain::User;
use crate::domain::audit::AuditAction;
pub use crate::domain::two_factor::Requirement;
use crate::secret::ServerSecret;

/// The issuer authenticator apps show beside the account name.
const ISSUER: &str = "Hallpass";

/// What a correct password leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Signed in.
    Done,
    /// Ask for a code first.
    Code,
    /// The instance requires a second factor this account does not have: enrolment first,
    /// and nothing else until it is done.
    Enrol,
}

/// What comes after a correct password (or a provider sign-in that asks for the second factor
/// too) for `user`. The break-glass admin has no account row and is exempt, always.
pub async fn after_password(db: &DbPool, user: &User) -> Result<Next, ServiceError> {
    if user.id == crate::env_auth::BREAK_GLASS_ID {
        return Ok(Next::Done);
    }
    let (uid, role) = (user.id, user.role);
    // A pending or rejected account only ever sees its status page: nothing to protect yet.
    let active = user.status == crate::domain::Status::Active;
    db.run(move |conn| {
        // A passkey is a second factor too: the second step offers whichever the account has.
        if db::two_factor::is_enrolled(conn, uid)? || db::passkeys::count(conn, uid)? > 0 {
            return Ok(Next::Code);
        }
        let required = parse_requirement(&db::two_factor::requirement(conn)?);
        Ok(if active && required.applies_to(role) {
            Next::Enrol
        } else {
            Next::Done
        })
    })
    .await
}

/// What the account page shows about the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The authenticator app.
    pub enrolled: bool,
    /// Passkeys, which the second step offers too.
    pub passkeys: i64,
    pub recovery_codes_left: i64,
    /// The instance requires one of this account (it cannot be turned off by its owner).
    pub required: bool,
    /// The break-glass admin: never asked, never required, cannot set one up.
    pub exempt: bool,
}

pub async fn status(db: &DbPool, user: &User) -> Result<Status, ServiceError> {
    let (uid, role) = (user.id, user.role);
    if uid == crate::env_auth::BREAK_GLASS_ID {
        return Ok(Status {
            enrolled: false,
            passkeys: 0,
            recovery_codes_left: 0,
            required: false,
            exempt: true,
        });
    }
    db.run(move |conn| {
        Ok(Status {
            exempt: false,
            enrolled: db::two_factor::is_enrolled(conn, uid)?,
            passkeys: db::passkeys::count(conn, uid)?,
            recovery_codes_left: db::two_factor::codes_left(conn, uid)?,
            required: parse_requirement(&db::two_factor::requirement(conn)?).applies_to(role),
        })
    })
    .await
}

/// Whether the account has a confirmed authenticator app.
pub async fn is_enrolled(db: &DbPool, user_id: i64) -> Result<bool, ServiceError> {
    Ok(db
        .run(move |conn| db::two_factor::is_enrolled(conn, user_id))
        .await?)
}

/// The instance's requirement.
pub async fn requirement(db: &DbPool) -> Result<Requirement, ServiceError> {
    Ok(settings(db).await?.required)
}

/// The instance's second-factor settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Who must have a second factor.
    pub required: Requirement,
    /// The OpenID providers (ids) after whose sign-in Hallpass asks for its own second factor
    /// too. Empty by default: a provider does its own checks.
    pub sso_providers: Vec<String>,
    /// Whether a sign-in vouched for by a trusted forward-auth proxy asks for it too. Off by
    /// default, for the same reason.
    pub after_proxy: bool,
}

impl Settings {
    fn from_stored(stored: db::two_factor::Stored) -> Self {
        Self {
            required: parse_requirement(&stored.required),
            sso_providers: stored
                .providers
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            after_proxy: stored.after_proxy,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}; after sso: {}; after proxy: {}",
            self.required.as_str(),
            if self.sso_providers.is_empty() {
                "none".to_owned()
            } else {
                self.sso_providers.join(" ")
            },
            if self.after_proxy { "yes" } else { "no" }
        )
    }
}

pub async fn settings(db: &DbPool) -> Result<Settings, ServiceError> {
    let stored = db.run(db::two_factor::stored).await?;
    Ok(Settings::from_stored(stored))
}

/// What a sign-in vouched for by a trusted forward-auth proxy leads to: [`Next::Done`] unless
/// the instance chose to ask after proxy sign-ins, then as after a password. Runs on every
/// proxied request, so the setting is read through `kept` (the same value until the database
/// changes).
pub async fn after_proxy(
    db: &DbPool,
    kept: &super::stamped::Stamped<bool>,
    user: &User,
) -> Result<Next, ServiceError> {
    let asks = kept
        .get_or_read(db, || async { Ok(settings(db).await?.after_proxy) })
        .await?;
    if !asks {
        return Ok(Next::Done);
    }
    after_password(db, user).await
}

/// Whether a sign-in through OpenID provider `provider` asks for the second factor too.
pub async fn provider_asks(db: &DbPool, provider: &str) -> Result<bool, ServiceError> {
    Ok(settings(db)
        .await?
        .sso_providers
        .iter()
        .any(|p| p == provider))
}

/// Saves the instance's second-factor settings (audited as `settings.two_factor`). The
/// requirement applies from each account's next sign-in: sessions already signed in are left
/// alone. Provider ids are kept as given (lower-case ids only: see `domain::sso`), without
/// duplicates.
pub async fn set_settings(db: &DbPool, actor: Actor, new: Settings) -> Result<(), ServiceError> {
    let mut providers: Vec<String> = new
        .sso_providers
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty() && !p.contains(char::is_whitespace))
        .collect();
    providers.sort();
    providers.dedup();
    let new = Settings {
        required: new.required,
        sso_providers: providers,
        after_proxy: new.after_proxy,
    };
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let before = Settings::from_stored(db::two_factor::stored(conn)?);
            db::two_factor::set_stored(
                conn,
                &db::two_factor::Stored {
                    required: new.required.as_str().to_owned(),
                    providers: new.sso_providers.join(" "),
                    after_proxy: new.after_proxy,
                },
            )?;
            let detail = format!("{} -> {}", before.describe(), new.describe());
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SettingsTwoFactor,
                    target: Some("instance"),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: Some(&detail),
                },
            )?;
            Ok(())
        })
    })
    .await
}

/// A stored value no version wrote (an operator's hand edit) counts as "nobody", with a log
/// line: refusing every sign-in over it would lock the instance.
fn parse_requirement(stored: &str) -> Requirement {
    Requirement::parse(stored).unwrap_or_else(|| {
        tracing::warn!(
            value = stored,
            "unknown settings.second_factor_required; treated as nobody"
        );
        Requirement::Nobody
    })
}

/// The TOTP of a raw secret: RFC 6238 with SHA-1, 6 digits, 30-second steps, one step of
/// skew either way (the crate's defaults, named here so they never drift).
fn totp(secret: Vec<u8>) -> Result<totp_rs::Totp, ServiceError> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(secret)
        .build()
        .map_err(|_| ServiceError::Internal("could not build the TOTP"))
}

/// The secret sealed in a row, opened; a secret sealed under another server secret (the
/// secret file was replaced) cannot be opened, which is a server problem, not a wrong code.
fn open_secret(secret: &ServerSecret, sealed: &str) -> Result<Vec<u8>, ServiceError> {
    let b32 = super::sso::open(secret, sealed).ok_or(ServiceError::Internal(
        "a TOTP secret cannot be decrypted: was the server secret replaced?",
    ))?;
    totp_rs::Secret::try_from_base32(&b32)
        .map(|s| s.as_bytes().to_vec())
        .map_err(|_| ServiceError::Internal("a stored TOTP secret is not base32"))
}

/// Now, in unix seconds (the clock, as the authenticator app's).
fn now() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

/// A recovery code as stored: HMAC under the server secret, bound to its account.
fn code_hmac(secret: &ServerSecret, user_id: i64, code: &str) -> String {
    secret.hmac_hex(format!("hallpass recovery code\0{user_id}\0{code}").as_bytes())
}
