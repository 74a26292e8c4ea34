//! The second step of a sign-in (a code or a recovery code, counted by the rate limit), and
//! the removal of someone's second factor by an admin or the recovery CLI.

use std::net::IpAddr;

use super::enrol::record;
use super::{code_hmac, now, open_secret, totp};
use crate::db::{self, DbPool, audit, sessions, users};
use crate::domain::User;
use crate::domain::audit::AuditAction;
use crate::domain::passkey::{WaysIn, check_reset};
use crate::domain::refusal::Missing;
use crate::domain::two_factor::Code;
use crate::secret::ServerSecret;
use crate::service::rate_limit::{Action, Attempt, RateLimiter};
use crate::service::{Actor, Refusal, ServiceError};

/// Checks a second-factor code of `user` — a TOTP code of the current step ±1 that is later
/// than the last one accepted, or an unused recovery code, which is then spent — counted by
/// the rate limit per client address and per account. Every outcome is audited
/// (`login.second_factor`).
pub async fn verify(
    db: &DbPool,
    secret: &ServerSecret,
    limiter: &RateLimiter,
    user: &User,
    input: &str,
    ip: IpAddr,
) -> Result<(), ServiceError> {
    let attempt = Attempt::new(Action::SecondFactor, ip, Some(&user.username));
    limiter
        .guard(attempt, check(db, secret, user, input, ip))
        .await
}

async fn check(
    db: &DbPool,
    secret: &ServerSecret,
    user: &User,
    input: &str,
    ip: IpAddr,
) -> Result<(), ServiceError> {
    let uid = user.id;
    let code = Code::parse(input);
    // What to spend: the TOTP step the code matches, or the recovery code's HMAC.
    let spend = match &code {
        Some(Code::Totp(c)) => {
            let row = db.run(move |conn| db::two_factor::find(conn, uid)).await?;
            match row.filter(|r| r.confirmed_at.is_some()) {
                Some(r) => totp(open_secret(secret, &r.sealed_secret)?)?
                    .check(c, now())
                    .and_then(|s| i64::try_from(s).ok())
                    .map(Spend::Step),
                None => None,
            }
        }
        Some(Code::Recovery(c)) => Some(Spend::Recovery(code_hmac(secret, uid, c))),
        None => None,
    };
    let (target, ip) = (user.username.clone(), ip.to_string());
    db.run(move |conn| {
        let (ok, kind) = match &spend {
            Some(Spend::Step(step)) => (db::two_factor::use_step(conn, uid, *step)?, "totp"),
            Some(Spend::Recovery(h)) => (db::two_factor::use_code(conn, uid, h)?, "recovery code"),
            None => (false, "code"),
        };
        audit::insert(
            conn,
            &audit::NewEvent {
                actor_id: ok.then_some(uid),
                actor: if ok { &target } else { "anonymous" },
                action: AuditAction::LoginSecondFactor,
                target: Some(&target),
                ip: Some(&ip),
                outcome: if ok { "success" } else { "failure" },
                detail: Some(kind),
            },
        )?;
        if ok {
            Ok(())
        } else {
            Err(Refusal::InvalidSecondFactor.into())
        }
    })
    .await
}

enum Spend {
    Step(i64),
    Recovery(String),
}

/// Removes `user_id`'s second factors — the authenticator app with its recovery codes, and
/// every passkey (a lost phone is usually a lost passkey too, and the second step offers
/// whichever the account has) — and ends all their sessions (audited as `two_factor.reset`):
/// an admin's "reset" in the user table, or `hallpass recover reset-2fa`. Returns the
/// username. The instance's requirement then sends them to enrolment at their next sign-in.
/// Refused when the passkeys are the account's only way in (no password, no linked
/// identity): the reset would lock it out.
pub async fn reset(db: &DbPool, actor: Actor, user_id: i64) -> Result<String, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let user = users::find_by_id(conn, user_id)?.ok_or(Missing::Account)?;
            let passkeys = db::passkeys::count(conn, user_id)?;
            if passkeys > 0 {
                let ways_in = WaysIn {
                    has_password: user.password_hash.is_some(),
                    linked_identities: db::identities::for_user(conn, user_id)?.len(),
                    other_passkeys: 0,
                };
                check_reset(&user.username, ways_in).map_err(Refusal::LastSignInMethod)?;
            }
            let app = db::two_factor::remove(conn, user_id)?;
            if !app && passkeys == 0 {
                return Err(Missing::SecondFactor.into());
            }
            db::passkeys::delete_all(conn, user_id)?;
            users::bump_session_version(conn, user_id)?;
            sessions::delete_for_user(conn, user_id)?;
            let removed = match (app, passkeys) {
                (true, 0) => "authenticator app".to_owned(),
                (true, n) => format!("authenticator app and {}", count_passkeys(n)),
                (false, n) => count_passkeys(n),
            };
            let detail = format!("{removed} removed; sessions ended");
            record(
                conn,
                &actor,
                AuditAction::TwoFactorReset,
                &user.username,
                Some(&detail),
            )?;
            Ok(user.username)
        })
    })
    .await
}

fn count_passkeys(n: i64) -> String {
    if n == 1 {
        "1 passkey".to_owned()
    } else {
        format!("{n} passkeys")
    }
}
