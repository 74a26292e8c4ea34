//! The per-request lookups (session load, API key by HMAC) stay on their indexes whatever the
//! planner's statistics say: `ANALYZE` at empty, tiny and 10k-row tables, and a 10k-row
//! table whose statistics were taken when it held one row (the case that once dropped
//! cookie requests to 131 req/s on SQLite). The plans are those of the exact statements the
//! lookups send (`hallpass::db::plans`).

use crate::support::{Db, TestApp, sql};
use hallpass::db::plans::{self, HotLookup};

async fn plan(app: &TestApp, lookup: HotLookup) -> Vec<String> {
    app.state
        .db
        .run(move |c| plans::explain(c, lookup))
        .await
        .unwrap()
}

async fn analyze(app: &TestApp) {
    app.state.db.run(plans::analyze).await.unwrap();
}

/// Adds `n` users, and `n` sessions and API keys of the first user (rows numbered from
/// `from`), in three statements.
async fn seed(app: &TestApp, from: i64, n: i64) {
    let numbers = format!(
        "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {})",
        from + n - 1
    );
    sql(
        app,
        format!(
            "{numbers} INSERT INTO users (username, username_key, role, status, created_at, updated_at) \
             SELECT 'u' || i, 'u' || i, 'user', 'active', 0, 0 FROM n"
        ),
    )
    .await;
    sql(
        app,
        format!(
            "{numbers} INSERT INTO sessions (id, user_id, data, expires_at, created_at) \
             SELECT 's' || i, (SELECT MIN(id) FROM users), '{{}}', 9000000000000, 0 FROM n"
        ),
    )
    .await;
    sql(
        app,
        format!(
            "{numbers} INSERT INTO api_keys (user_id, name, prefix, key_hmac, created_at) \
             SELECT (SELECT MIN(id) FROM users), 'k', 'p', 'h' || i, 0 FROM n"
        ),
    )
    .await;
}

/// SQLite: every statement is a search by the primary or unique key, never a scan — at
/// every table size, whatever `ANALYZE` recorded.
fn assert_sqlite_indexed(when: &str, lookup: HotLookup, plan: &[String]) {
    let (table, key) = match lookup {
        HotLookup::SessionLoad => ("sessions", "(id=?)"),
        HotLookup::ApiKeyByHmac => ("api_keys", "(key_hmac=?)"),
    };
    assert!(
        plan.iter().all(|l| !l.starts_with("SCAN")),
        "{when}: {lookup:?} scans: {plan:#?}"
    );
    assert!(
        plan.iter()
            .any(|l| l.starts_with(&format!("SEARCH {table} ")) && l.ends_with(key)),
        "{when}: {lookup:?} does not search {table} by {key}: {plan:#?}"
    );
    assert!(
        plan.iter()
            .any(|l| l == "SEARCH users USING INTEGER PRIMARY KEY (rowid=?)"),
        "{when}: {lookup:?} does not find the user by primary key: {plan:#?}"
    );
}

/// PostgreSQL: at 10k rows, the lookup reads the table through its key's index, the user
/// through `users_pkey`, and scans neither table.
///
/// Why only at 10k rows: on a table of one or two pages a sequential scan *is* cheaper than
/// the index, and the planner legitimately picks it; what must not happen is what SQLite
/// did — a plan chosen on stale statistics that survives the table's growth. PostgreSQL
/// scales the row estimate by the table's *current* page count, so the 10k-row checks after
/// an `ANALYZE` taken at one row (stale) and after a fresh one are the meaningful ones.
/// (Forcing the index with `SET enable_seqscan = off` would prove nothing about production,
/// which does not set it.)
fn assert_pg_indexed(when: &str, lookup: HotLookup, plan: &[String]) {
    let (table, index) = match lookup {
        HotLookup::SessionLoad => ("sessions", "sessions_pkey"),
        HotLookup::ApiKeyByHmac => ("api_keys", "api_keys_key_hmac_key"),
    };
    let text = plan.join("\n");
    for t in [table, "users"] {
        assert!(
            !text.contains(&format!("Seq Scan on {t}")),
            "{when}: {lookup:?} scans {t}:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("using {index} on {table}")),
        "{when}: {lookup:?} does not use {index}:\n{text}"
    );
    assert!(
        text.contains("using users_pkey on users"),
        "{when}: {lookup:?} does not find the user by users_pkey:\n{text}"
    );
}

async fn check(app: &TestApp, db: Db, when: &str, strict_on_pg: bool) {
    for lookup in [HotLookup::SessionLoad, HotLookup::ApiKeyByHmac] {
        let generic = app
            .state
            .db
            .run(move |c| plans::explain_generic(c, lookup))
            .await
            .unwrap();
        match (db, generic) {
            (Db::Sqlite, g) => assert!(g.is_none()),
            // The plan a kept prepared statement ends up with, chosen without bind values.
            (Db::Postgres, Some(g)) if strict_on_pg => {
                assert_pg_indexed(&format!("{when} (generic plan)"), lookup, &g)
            }
            (Db::Postgres, g) => assert!(g.is_some_and(|g| !g.is_empty())),
        }
        let plan = plan(app, lookup).await;
        match db {
            Db::Sqlite => assert_sqlite_indexed(when, lookup, &plan),
            Db::Postgres if strict_on_pg => assert_pg_indexed(when, lookup, &plan),
            Db::Postgres => assert!(
                plan.iter().any(|l| l.contains("Scan")),
                "{when}: no plan: {plan:#?}"
            ),
        }
    }
}

async fn hot_lookups_stay_on_their_indexes(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    // Empty sessions and api_keys, statistics taken now.
    analyze(&app).await;
    check(&app, db, "empty, analyzed", false).await;

    // One row each, analyzed: the statistics now say "tiny".
    seed(&app, 1, 1).await;
    analyze(&app).await;
    check(&app, db, "one row, analyzed", false).await;

    // 10k rows with the one-row statistics still in place (nobody ran ANALYZE since).
    seed(&app, 2, 10_000).await;
    check(&app, db, "10k rows, statistics from one row", true).await;

    // 10k rows, analyzed.
    analyze(&app).await;
    check(&app, db, "10k rows, analyzed", true).await;
}

both_databases!(hot_lookups_stay_on_their_indexes);
