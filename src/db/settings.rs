//! The single row of instance settings.

use diesel::prelude::*;

use super::schema::settings;
use super::{Conn, DbError, now_ts};

/// Takes the instance write lock: a no-op write to the settings row. See [`super::write_tx`].
pub(super) fn lock_instance(conn: &mut Conn) -> QueryResult<()> {
    let n = diesel::update(settings::table.filter(settings::id.eq(1)))
        .set(settings::id.eq(1))
        .execute(conn)?;
    if n == 1 {
        Ok(())
    } else {
        Err(diesel::result::Error::NotFound)
    }
}

/// Instance settings as the rest of the program sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub local_login_enabled: bool,
    /// Anyone may create an account at `/register`.
    pub registration_enabled: bool,
    /// Self-registered accounts start `active` instead of `pending`.
    pub auto_approve_registrations: bool,
    /// The admin's SSO switch; `None` until first set (then SSO is on exactly when
    /// providers come from the environment).
    pub sso_enabled: Option<bool>,
}

/// Read on every sign-in page (the registration link): `.load` rather than `.first`, whose
/// LIMIT bind keeps diesel from caching the prepared statement (see `users::find_by_id`).
pub fn get(conn: &mut Conn) -> Result<Settings, DbError> {
    let (local, registration, auto_approve, sso) = settings::table
        .filter(settings::id.eq(1))
        .select((
            settings::local_login_enabled,
            settings::registration_enabled,
            settings::auto_approve_registrations,
            settings::sso_enabled,
        ))
        .load::<(i32, i32, i32, Option<i32>)>(conn)?
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
    Ok(Settings {
        local_login_enabled: local != 0,
        registration_enabled: registration != 0,
        auto_approve_registrations: auto_approve != 0,
        sso_enabled: sso.map(|v| v != 0),
    })
}

/// Writes the registration settings (call inside [`super::write_tx`]).
pub fn set_registration(
    conn: &mut Conn,
    registration_enabled: bool,
    auto_approve_registrations: bool,
) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set((
            settings::registration_enabled.eq(i32::from(registration_enabled)),
            settings::auto_approve_registrations.eq(i32::from(auto_approve_registrations)),
            settings::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Writes the sign-in switches (call inside [`super::write_tx`]).
pub fn set_sign_in(
    conn: &mut Conn,
    local_login_enabled: bool,
    sso_enabled: bool,
) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set((
            settings::local_login_enabled.eq(i32::from(local_login_enabled)),
            settings::sso_enabled.eq(Some(i32::from(sso_enabled))),
            settings::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The forward-auth header preset chosen in the admin UI, if any.
pub fn proxy_preset(conn: &mut Conn) -> Result<Option<String>, DbError> {
    Ok(settings::table
        .filter(settings::id.eq(1))
        .select(settings::proxy_preset)
        .load::<Option<String>>(conn)?
        .pop()
        .flatten())
}

/// Stores the preset (call inside [`super::write_tx`]).
pub fn set_proxy_preset(conn: &mut Conn, preset: Option<&str>) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set((
            settings::proxy_preset.eq(preset),
            settings::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The preset before the last change (`"config"`: the configured headers), if there is one
/// to revert to.
pub fn proxy_preset_previous(conn: &mut Conn) -> Result<Option<String>, DbError> {
    Ok(settings::table
        .filter(settings::id.eq(1))
        .select(settings::proxy_preset_previous)
        .load::<Option<String>>(conn)?
        .pop()
        .flatten())
}

/// Stores (or clears) the revert snapshot of the preset (call inside [`super::write_tx`]).
pub fn set_proxy_preset_previous(conn: &mut Conn, previous: Option<&str>) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set(settings::proxy_preset_previous.eq(previous))
        .execute(conn)?;
    Ok(())
}

/// Records whether the break-glass admin exists (start-up), which reserves its username.
pub fn set_break_glass(conn: &mut Conn, on: bool) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set(settings::break_glass_admin.eq(i32::from(on)))
        .execute(conn)?;
    Ok(())
}

/// Whether the break-glass admin exists.
pub fn break_glass(conn: &mut Conn) -> Result<bool, DbError> {
    Ok(settings::table
        .filter(settings::id.eq(1))
        .select(settings::break_glass_admin)
        .load::<i32>(conn)?
        .pop()
        .is_some_and(|v| v != 0))
}

/// Writes the password sign-in switch alone, leaving the SSO switch as it is (even unset);
/// call inside [`super::write_tx`].
pub fn set_local_login(conn: &mut Conn, local_login_enabled: bool) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set((
            settings::local_login_enabled.eq(i32::from(local_login_enabled)),
            settings::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The instance's setup code: `candidate` is stored unless a code exists already (another
/// process on this database may have made one first), and the stored code is returned.
pub fn ensure_setup_code(conn: &mut Conn, candidate: &str) -> Result<String, DbError> {
    diesel::update(
        settings::table
            .filter(settings::id.eq(1))
            .filter(settings::setup_code.is_null()),
    )
    .set(settings::setup_code.eq(candidate))
    .execute(conn)?;
    settings::table
        .filter(settings::id.eq(1))
        .select(settings::setup_code)
        .load::<Option<String>>(conn)?
        .pop()
        .flatten()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// Burns the setup code (the first admin exists).
pub fn clear_setup_code(conn: &mut Conn) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set(settings::setup_code.eq(None::<String>))
        .execute(conn)?;
    Ok(())
}

/// The version of the forward-auth rules (apps, groups, memberships) in the database.
pub fn rules_version(conn: &mut Conn) -> Result<i64, DbError> {
    settings::table
        .filter(settings::id.eq(1))
        .select(settings::rules_version)
        .load::<i64>(conn)?
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// Marks the forward-auth rules as changed. Call it inside the transaction of every write to
/// apps, groups or group memberships, so every process reloads them on its next request.
pub fn bump_rules_version(conn: &mut Conn) -> Result<(), DbError> {
    diesel::update(settings::table.filter(settings::id.eq(1)))
        .set(settings::rules_version.eq(settings::rules_version + 1))
        .execute(conn)?;
    Ok(())
}
