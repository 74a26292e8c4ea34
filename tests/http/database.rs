//! The database layer itself.

use diesel::connection::SimpleConnection;
use diesel::{QueryableByName, RunQueryDsl, sql_types};
use hallpass::db::{AnyConnection, Backend, DbError};

use crate::support::{Db, TestApp};

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = sql_types::Text)]
    value: String,
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout() {
    let app = TestApp::empty(Db::Sqlite).await.unwrap();
    assert_eq!(app.state.db.backend(), Backend::Sqlite);
    let (mode, fk, busy) = app
        .state
        .db
        .run(|conn| {
            let AnyConnection::Sqlite(c) = conn else {
                panic!("not sqlite")
            };
            let get = |c: &mut diesel::SqliteConnection, q: &str| -> Result<String, DbError> {
                Ok(diesel::sql_query(q).get_result::<Value>(c)?.value)
            };
            Ok::<_, DbError>((
                get(c, "SELECT journal_mode AS value FROM pragma_journal_mode")?,
                get(
                    c,
                    "SELECT CAST(foreign_keys AS TEXT) AS value FROM pragma_foreign_keys",
                )?,
                get(
                    c,
                    "SELECT CAST(timeout AS TEXT) AS value FROM pragma_busy_timeout",
                )?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(fk, "1");
    assert_eq!(busy, "10000");
}

both_databases!(both_backends_share_one_schema);

async fn both_backends_share_one_schema(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let expected = match db {
        Db::Sqlite => Backend::Sqlite,
        Db::Postgres => Backend::Postgres,
    };
    assert_eq!(app.state.db.backend(), expected);
    // A foreign key holds on both: a session row for a missing user is refused.
    let refused = app
        .state
        .db
        .run(|c| {
            c.batch_execute("INSERT INTO sessions (id, user_id, data, expires_at, created_at) VALUES ('x', 999999, '{}', 0, 0)")
                .map_err(DbError::from)
        })
        .await;
    assert!(refused.is_err(), "foreign keys are enforced");
    // Usernames are unique case-insensitively on both.
    let dup = app
        .state
        .db
        .run(|c| {
            c.batch_execute("INSERT INTO users (username, username_key, role, status, created_at, updated_at) VALUES ('ADMIN', 'admin', 'user', 'active', 0, 0)")
                .map_err(DbError::from)
        })
        .await;
    assert!(dup.is_err());
    assert!(app.state.db.ping().await);
}

#[tokio::test]
async fn readyz_reports_a_lost_database() {
    let Some(test_db) = crate::support::TestDb::new(Db::Postgres) else {
        return;
    };
    let url = test_db.url.clone();
    let app = TestApp::start_on(
        test_db,
        |c| c.database.connect_timeout = hallpass::config::HumanDuration::secs(1),
        true,
    )
    .await;
    let c = app.client();
    assert_eq!(
        c.get(app.url("/readyz")).send().await.unwrap().status(),
        200
    );
    // Drop the database under the running server (PostgreSQL can; a SQLite file cannot be
    // taken away from open connections, so this case is PostgreSQL-only).
    let (server, name) = url.rsplit_once('/').unwrap();
    let drop = format!("DROP DATABASE {name} WITH (FORCE)");
    let server = server.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        let mut admin = diesel::PgConnection::establish(&format!("{server}/postgres")).unwrap();
        diesel::sql_query(drop).execute(&mut admin).unwrap();
    })
    .await
    .unwrap();
    let r = c.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        c.get(app.url("/healthz")).send().await.unwrap().status(),
        200,
        "liveness does not depend on the database"
    );
}
