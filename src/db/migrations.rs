//! Embedded migrations, one folder per backend with identical names, applied at start-up.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{AnyConnection, Backend, DbError, DbPool};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies pending migrations; refuses a database that has migrations this binary lacks
/// (a newer Hallpass ran on it), because running old code on a newer schema loses data.
/// Returns the versions that were applied now.
/// Then fills what a migration could not compute in SQL (the accounts' search keys).
pub fn run(pool: &DbPool) -> Result<Vec<String>, DbError> {
    pool.run_blocking(|conn| {
        let applied = match conn {
            AnyConnection::Sqlite(c) => apply(c, SQLITE),
            AnyConnection::Postgresql(c) => apply(c, POSTGRES),
        }?;
        super::user_search::fill_search_keys(conn)?;
        Ok(applied)
    })
}

fn apply<C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>, DbError>
where
    C: MigrationHarness<<C as diesel::Connection>::Backend> + diesel::Connection,
{
    let migration_err =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    let known: Vec<String> =
        diesel::migration::MigrationSource::<<C as diesel::Connection>::Backend>::migrations(
            &source,
        )
        .map_err(migration_err)?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    let applied = conn.applied_migrations().map_err(migration_err)?;
    if let Some(unknown) = applied
        .iter()
        .map(|v| v.to_string())
        .find(|v| !known.contains(v))
    {
        return Err(DbError::SchemaTooNew(unknown));
    }
    let ran = conn.run_pending_migrations(source).map_err(migration_err)?;
    Ok(ran.iter().map(|v| v.to_string()).collect())
}

/// The newest migration this binary carries for `backend` (its version, e.g.
/// `20261130120000`): a backup records its database's level, and a restore refuses a file
/// from a level this binary does not know.
pub fn latest_known(backend: Backend) -> String {
    fn latest<DB: diesel::backend::Backend>(source: &EmbeddedMigrations) -> String
    where
        EmbeddedMigrations: diesel::migration::MigrationSource<DB>,
    {
        diesel::migration::MigrationSource::<DB>::migrations(source)
            .map(|ms| {
                ms.iter()
                    .map(|m| m.name().version().to_string())
                    .max()
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }
    match backend {
        Backend::Sqlite => latest::<diesel::sqlite::Sqlite>(&SQLITE),
        Backend::Postgres => latest::<diesel::pg::Pg>(&POSTGRES),
    }
}
