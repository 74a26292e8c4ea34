//! Signing in with a passkey: alone (discoverable: the authenticator says whose it is), and as
//! the second step after a password.
//!
//! Both verify the signature over the challenge, the origin, that the authenticator verified
//! its user (PIN, fingerprint: a passkey is two factors in one), and the signature counter: a
//! counter that did not go up since the last use means a cloned authenticator, and is refused.
//! The new counter is written back with a conditional update, so two answers racing with the
//! same counter cannot both sign in.

use std::net::IpAddr;

use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PublicKeyCredential,
};

use super::{Ceremony, Purpose, credential_key, options, parse_answer, relying_party};
use crate::config::Config;
use crate::db::{self, DbPool, audit, passkeys, users};
use crate::domain::User;
use crate::domain::audit::AuditAction;
use crate::service::rate_limit::{Action, Attempt, RateLimiter};
use crate::service::{Refusal, ServiceError};

/// Whether the account has at least one passkey (the second step offers it then).
pub async fn has_passkeys(db: &DbPool, user_id: i64) -> Result<bool, ServiceError> {
    Ok(db.run(move |conn| passkeys::count(conn, user_id)).await? > 0)
}

/// Starts a sign-in with a passkey alone: options for `navigator.credentials.get()` that name
/// no account (the authenticator offers the passkeys it holds for this site).
pub fn start_sign_in(config: &Config) -> Result<(serde_json::Value, Ceremony), ServiceError> {
    let rp = relying_party(config)?;
    let (rcr, state) = rp
        .start_discoverable_authentication()
        .map_err(|_| ServiceError::Internal("could not start a passkey sign-in"))?;
    Ok((
        options(&rcr)?,
        Ceremony::new(Purpose::SignIn, None, None, &state)?,
    ))
}

/// Finishes a sign-in with a passkey alone; returns the account, which may sign in (a
/// disabled or deleted account's passkey is refused like an unknown one). Every outcome is
/// audited (`login.passkey`); a success records the sign-in time like a password's.
pub async fn finish_sign_in(
    db: &DbPool,
    config: &Config,
    ceremony: Option<Ceremony>,
    answer: &str,
    ip: IpAddr,
) -> Result<User, ServiceError> {
    let rp = relying_party(config)?;
    let outcome = async {
        let state: DiscoverableAuthentication = Ceremony::open(ceremony, Purpose::SignIn, None)?;
        let answer: PublicKeyCredential = parse_answer(answer)?;
        let (handle, cred) = rp
            .identify_discoverable_authentication(&answer)
            .map_err(|_| Refusal::InvalidPasskey)?;
        let cred = credential_key(cred);
        let row = db
            .run(move |conn| passkeys::by_credential(conn, &cred))
            .await?
            .filter(|r| r.user_handle == handle.to_string())
            .ok_or(Refusal::InvalidPasskey)?;
        let (uid, pid) = (row.user_id, row.id);
        let user = db
            .run(move |conn| users::find_by_id(conn, uid))
            .await?
            .ok_or(Refusal::InvalidPasskey)?;
        let mut passkey: Passkey = serde_json::from_str(&row.passkey)
            .map_err(|_| ServiceError::Internal("a stored passkey cannot be read"))?;
        let result = rp
            .finish_discoverable_authentication_v2(&answer, state, &passkey)
            .map_err(refused)?;
        if !user.may_sign_in() {
            return Err(Failure {
                error: Refusal::InvalidPasskey.into(),
                account: Some(user.username),
            });
        }
        spend(db, pid, &row.passkey, &mut passkey, &result).await?;
        Ok(user)
    }
    .await;
    let ip = ip.to_string();
    db.run(move |conn| {
        let (actor_id, actor, target) = match &outcome {
            Ok(u) => (Some(u.id), u.username.clone(), Some(u.username.clone())),
            Err(e) => (None, "anonymous".to_owned(), e.account().map(str::to_owned)),
        };
        if let Ok(u) = &outcome {
            users::record_login(conn, u.id, None)?;
        }
        audit::insert(
            conn,
            &audit::NewEvent {
                actor_id,
                actor: &actor,
                action: AuditAction::LoginPasskey,
                target: target.as_deref(),
                ip: Some(&ip),
                outcome: if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                },
                detail: None,
            },
        )?;
        outcome.map_err(Failure::into_error)
    })
    .await
}

/// Starts the second step with a passkey of `user`: options naming their passkeys.
pub async fn start_second_factor(
    db: &DbPool,
    config: &Config,
    user: &User,
) -> Result<(serde_json::Value, Ceremony), ServiceError> {
    let rp = relying_party(config)?;
    let uid = user.id;
    let rows = db.run(move |conn| passkeys::for_user(conn, uid)).await?;
    let keys: Vec<Passkey> = rows
        .iter()
        .filter_map(|r| serde_json::from_str(&r.passkey).ok())
        .collect();
    if keys.is_empty() {
        return Err(crate::domain::refusal::Missing::Passkey.into());
    }
    let (rcr, state) = rp
        .start_passkey_authentication(&keys)
        .map_err(|_| ServiceError::Internal("could not start a passkey check"))?;
    let ceremony = Ceremony::new(Purpose::SecondFactor, Some(uid), None, &state)?;
    Ok((options(&rcr)?, ceremony))
}

/// Finishes the second step with a passkey, counted by the rate limit like a code (per client
/// address and account) and audited as `login.second_factor` (detail `passkey`).
pub async fn finish_second_factor(
    db: &DbPool,
    config: &Config,
    limiter: &RateLimiter,
    user: &User,
    ceremony: Option<Ceremony>,
    answer: &str,
    ip: IpAddr,
) -> Result<(), ServiceError> {
    let attempt = Attempt::new(Action::SecondFactor, ip, Some(&user.username));
    let check = async {
        let outcome = second_factor(db, config, user, ceremony, answer).await;
        let (uid, target, ip) = (user.id, user.username.clone(), ip.to_string());
        let ok = outcome.is_ok();
        db.run(move |conn| {
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: ok.then_some(uid),
                    actor: if ok { &target } else { "anonymous" },
                    action: AuditAction::LoginSecondFactor,
                    target: Some(&target),
                    ip: Some(&ip),
                    outcome: if ok { "success" } else { "failure" },
                    detail: Some("passkey"),
                },
            )?;
            Ok::<_, ServiceError>(())
        })
        .await?;
        outcome
    };
    limiter.guard(attempt, check).await
}

async fn second_factor(
    db: &DbPool,
    config: &Config,
    user: &User,
    ceremony: Option<Ceremony>,
    answer: &str,
) -> Result<(), ServiceError> {
    let rp = relying_party(config)?;
    let state: PasskeyAuthentication =
        Ceremony::open(ceremony, Purpose::SecondFactor, Some(user.id))?;
    let answer: PublicKeyCredential = parse_answer(answer)?;
    let result = rp
        .finish_passkey_authentication(&answer, &state)
        .map_err(|e| refused(e).into_error())?;
    let cred = credential_key(result.cred_id().as_ref());
    let row = db
        .run(move |conn| passkeys::by_credential(conn, &cred))
        .await?
        .filter(|r| r.user_id == user.id)
        .ok_or(Refusal::InvalidPasskey)?;
    let mut passkey: Passkey = serde_json::from_str(&row.passkey)
        .map_err(|_| ServiceError::Internal("a stored passkey cannot be read"))?;
    spend(db, row.id, &row.passkey, &mut passkey, &result)
        .await
        .map_err(Failure::into_error)
}

/// Writes the passkey's new counter (and the time of use) back, if nothing else did since it
/// was read; otherwise the answer lost a race with another use of the same counter.
async fn spend(
    db: &DbPool,
    id: i64,
    before: &str,
    passkey: &mut Passkey,
    result: &AuthenticationResult,
) -> Result<(), Failure> {
    passkey.update_credential(result);
    let after = serde_json::to_string(passkey)
        .map_err(|_| ServiceError::Internal("could not store the passkey"))?;
    let before = before.to_owned();
    let recorded = db
        .run(move |conn| db::write_tx(conn, |conn| passkeys::record_use(conn, id, &before, &after)))
        .await
        .map_err(ServiceError::from)?;
    if recorded {
        Ok(())
    } else {
        Err(ServiceError::from(Refusal::InvalidPasskey).into())
    }
}

/// The crate's refusal, logged (it says which check failed: counter, user verification,
/// signature…) and answered as one refusal for all.
fn refused(e: webauthn_rs::prelude::WebauthnError) -> Failure {
    tracing::info!(error = %e, "passkey refused");
    ServiceError::from(Refusal::InvalidPasskey).into()
}

/// A failed passkey sign-in, with the account it was for when that is known (for the audit
/// log's target).
struct Failure {
    error: ServiceError,
    account: Option<String>,
}

impl Failure {
    fn into_error(self) -> ServiceError {
        self.error
    }

    fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }
}

impl From<ServiceError> for Failure {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            account: None,
        }
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        ServiceError::from(r).into()
    }
}

impl From<db::DbError> for Failure {
    fn from(e: db::DbError) -> Self {
        ServiceError::from(e).into()
    }
}
