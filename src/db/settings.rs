//! The single row of instance settings.

use diesel::prelude::*;

use super::schema::settings;
use super::{Conn, DbError};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub local_login_enabled: bool,
    pub registration_enabled: bool,
}

pub fn get(conn: &mut Conn) -> Result<Settings, DbError> {
    let (local, registration) = settings::table
        .filter(settings::id.eq(1))
        .select((
            settings::local_login_enabled,
            settings::registration_enabled,
        ))
        .first::<(i32, i32)>(conn)?;
    Ok(Settings {
        local_login_enabled: local != 0,
        registration_enabled: registration != 0,
    })
}
