//! Queries on `user_totp` and `recovery_codes`, and the instance's second-factor requirement
//! (a column of `settings`). Secrets arrive sealed and codes as HMACs: this module never
//! sees a usable secret.

use diesel::prelude::*;

use super::schema::{recovery_codes, settings, user_totp};
use super::{Conn, DbError, now_ts};

/// A stored TOTP secret (sealed). No `Debug`: the sealed secret stays out of logs too.
pub struct TotpRow {
    pub sealed_secret: String,
    /// `None` while enrolment waits for its first valid code.
    pub confirmed_at: Option<i64>,
    /// The time step of the last code accepted.
    pub last_step: Option<i64>,
}

/// The account's TOTP secret, confirmed or not.
pub fn find(conn: &mut Conn, user_id: i64) -> Result<Option<TotpRow>, DbError> {
    let row = user_totp::table
        .filter(user_totp::user_id.eq(user_id))
        .select((
            user_totp::secret,
            user_totp::confirmed_at,
            user_totp::last_step,
        ))
        .load::<(String, Option<i64>, Option<i64>)>(conn)?
        .pop();
    Ok(row.map(|(sealed_secret, confirmed_at, last_step)| TotpRow {
        sealed_secret,
        confirmed_at,
        last_step,
    }))
}

/// Whether the account has a confirmed secret (asked for at sign-in).
pub fn is_enrolled(conn: &mut Conn, user_id: i64) -> Result<bool, DbError> {
    let n: i64 = user_totp::table
        .filter(user_totp::user_id.eq(user_id))
        .filter(user_totp::confirmed_at.is_not_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Stores a new, unconfirmed secret, replacing an earlier unconfirmed one. Returns `false`
/// (and changes nothing) when the account has a confirmed secret already.
pub fn start(conn: &mut Conn, user_id: i64, sealed: &str) -> Result<bool, DbError> {
    diesel::delete(
        user_totp::table
            .filter(user_totp::user_id.eq(user_id))
            .filter(user_totp::confirmed_at.is_null()),
    )
    .execute(conn)?;
    if is_enrolled(conn, user_id)? {
        return Ok(false);
    }
    diesel::insert_into(user_totp::table)
        .values((
            user_totp::user_id.eq(user_id),
            user_totp::secret.eq(sealed),
            user_totp::created_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Confirms the pending secret with the step of the code that confirmed it (so that code
/// cannot be used again to sign in). `false`: there was no pending secret.
pub fn confirm(conn: &mut Conn, user_id: i64, step: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        user_totp::table
            .filter(user_totp::user_id.eq(user_id))
            .filter(user_totp::confirmed_at.is_null()),
    )
    .set((
        user_totp::confirmed_at.eq(now_ts()),
        user_totp::last_step.eq(step),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records that a code of time step `step` was accepted, unless a code of this step or a
/// later one was accepted before: one conditional write, so two requests racing with the
/// same code cannot both succeed. `false`: replayed.
pub fn use_step(conn: &mut Conn, user_id: i64, step: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        user_totp::table
            .filter(user_totp::user_id.eq(user_id))
            .filter(user_totp::confirmed_at.is_not_null())
            .filter(
                user_totp::last_step
                    .is_null()
                    .or(user_totp::last_step.lt(step)),
            ),
    )
    .set(user_totp::last_step.eq(step))
    .execute(conn)?;
    Ok(n == 1)
}

/// Removes the account's second factor: its secret and its recovery codes. Returns whether
/// there was a secret.
pub fn remove(conn: &mut Conn, user_id: i64) -> Result<bool, DbError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    let n =
        diesel::delete(user_totp::table.filter(user_totp::user_id.eq(user_id))).execute(conn)?;
    Ok(n > 0)
}

/// Replaces the account's recovery codes with these HMACs.
pub fn replace_codes(conn: &mut Conn, user_id: i64, hmacs: &[String]) -> Result<(), DbError> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for h in hmacs {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hmac.eq(h),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Spends the unused recovery code with this HMAC, in one conditional write. `false`: no
/// such code, or spent already.
pub fn use_code(conn: &mut Conn, user_id: i64, hmac: &str) -> Result<bool, DbError> {
    let n = diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hmac.eq(hmac))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now_ts()))
    .execute(conn)?;
    Ok(n > 0)
}

/// How many unused recovery codes the account has left.
pub fn codes_left(conn: &mut Conn, user_id: i64) -> Result<i64, DbError> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// The instance's requirement as stored (`nobody`, `admins`, `everyone`).
pub fn requirement(conn: &mut Conn) -> Result<String, DbError> {
    Ok(stored(conn)?.required)
}

/// The stored second-factor settings: the requirement, the space-separated ids of the OpenID
/// providers whose sign-ins ask for the second factor too, and whether forward-auth proxy
/// sign-ins do.
pub struct Stored {
    pub required: String,
    pub providers: String,
    pub after_proxy: bool,
}

pub fn stored(conn: &mut Conn) -> Result<Stored, DbError> {
    let (required, providers, after_proxy) = settings::table
        .filter(settings::id.eq(1))
        .select((
            settings::second_factor_required,
            settings::second_factor_providers,
            settings::second_factor_after_proxy,
        ))
        .load::<(String, String, i32)>(conn)?
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
    Ok(Stored {
        required,
        providers,
        after_proxy: after_proxy != 0,
    })
}

/// Writes them (call inside [`super::write_tx`]).
pub fn set_stored(conn: &mut Conn, new: &Stored) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set((
            settings::second_factor_required.eq(&new.required),
            settings::second_factor_providers.eq(&new.providers),
            settings::second_factor_after_proxy.eq(i32::from(new.after_proxy)),
            settings::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}
