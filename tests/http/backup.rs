//! Backup and restore (issue 13): `hallpass backup|restore` run as the real binary against
//! real databases (while a server runs on them), the SQLite → PostgreSQL → SQLite move, the
//! setup page's "Restore from backup", scheduled backups, and damaged or edited files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::{QueryableByName, RunQueryDsl, sql_types};
use hallpass::db::{DatabaseUrl, DbError, DbPool, PoolOptions};
use serde_json::Value;

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, TestDb, add_user, api_login, audit_events,
    csrf_in, sql, user,
};

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// What a run printed and how it ended.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// `hallpass ARGS` on the database `url` with `data_dir` as `server.data_dir`, with a clean
/// environment, in a directory without a `hallpass.toml`.
fn hallpass(url: &str, data_dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_DATABASE__URL", url)
        .env("HALLPASS_SERVER__DATA_DIR", data_dir)
        .args(args);
    c
}

/// Runs the command off the async workers, with `stdin` (or /dev/null: not a terminal).
async fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Ran {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            let _ = child.stdin.take().unwrap().write_all(&input);
        }
        let out = child.wait_with_output().unwrap();
        Ran {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// `hallpass backup FILE ARGS` of the app's database; asserts it succeeded.
async fn backup_of(app: &TestApp, file: &Path, extra: &[&str]) {
    let url = app.state.config.database.url.expose().to_owned();
    let mut args = vec!["backup", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let ran = run(hallpass(&url, app.data_dir(), &args), None).await;
    assert_eq!(ran.code, Some(0), "backup failed: {}", ran.stderr);
}

/// `hallpass restore ARGS` on `url` / `data_dir`.
async fn restore(url: &str, data_dir: &Path, args: &[&str]) -> Ran {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    run(hallpass(url, data_dir, &all), None).await
}

fn pool(url: &str) -> DbPool {
    DbPool::connect(
        &DatabaseUrl::parse(url).unwrap(),
        &PoolOptions {
            max_connections: 1,
            connect_timeout: Duration::from_secs(10),
            test_on_check_out: false,
        },
    )
    .unwrap()
}

/// Every carried table's rows (as JSON values, in primary-key order), by table name.
async fn snapshot(db: &DbPool) -> BTreeMap<String, Vec<Value>> {
    db.run(|conn| {
        let mut tables: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut current = String::new();
        hallpass::db::backup::read_all(conn, |item| -> Result<(), DbError> {
            use hallpass::db::backup::Item;
            match item {
                Item::Begin { .. } => {}
                Item::Table(t) => {
                    current.clone_from(&t.name);
                    tables.insert(t.name.clone(), Vec::new());
                }
                Item::Row(r) => tables
                    .get_mut(&current)
                    .unwrap()
                    .push(serde_json::from_str(r).unwrap()),
            }
            Ok(())
        })?;
        Ok::<_, DbError>(tables)
    })
    .await
    .unwrap()
}

/// The file's lines as JSON (plain or gzip).
fn lines_of(file: &Path) -> Vec<Value> {
    let bytes = std::fs::read(file).unwrap();
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What `populate` made that the checks need afterwards.
struct Fixture {
    /// An API key of the admin (the clear key).
    api_key: String,
}

const CLIENT_SECRET: &str = "provider client secret";

/// Puts at least one row in every table a backup carries, with the awkward values: Unicode,
/// quotes, newlines, NULLs, an integer above 2^53, a soft-deleted account.
async fn populate(app: &TestApp) -> Fixture {
    let carol = add_user(app, "carol", "user").await;
    let dave = add_user(app, "dave", "viewer").await;
    sql(
        app,
        "UPDATE users SET display_name = 'Zoë \"Q\" O''Brien\nsecond line' WHERE username_key = 'carol'",
    )
    .await;
    sql(
        app,
        "UPDATE users SET deleted_at = 1700000000 WHERE username_key = 'dave'",
    )
    .await;
    let admin = user(app, ADMIN).await;
    let created = hallpass::service::api_keys::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &admin,
        hallpass::domain::NewApiKey::parse("backup test", None).unwrap(),
    )
    .await
    .unwrap();
    let sealed = hallpass::service::sso::seal(&app.state.secret, CLIENT_SECRET).unwrap();
    sql(
        app,
        format!(
            "INSERT INTO oidc_providers (id, label, issuer, client_id, client_secret, scopes, \
             subject_claim, username_claim, email_claim, policy, enabled, previous, created_at, \
             updated_at, groups_claim) VALUES ('corp', 'Corp ✓', 'https://idp.example.com', \
             'hallpass', '{sealed}', 'openid email', 'sub', 'preferred_username', 'email', \
             'link', 0, NULL, 1, 2, 'groups')"
        ),
    )
    .await;
    sql(
        app,
        format!(
            "INSERT INTO identities (user_id, provider, issuer, subject, email, display_name, \
             created_at, last_login_at) VALUES ({carol}, 'corp', 'https://idp.example.com', \
             'sub-1', 'carol@idp.example.com', NULL, 5, NULL)"
        ),
    )
    .await;
    sql(
        app,
        "INSERT INTO groups (name, name_key, description, created_at, updated_at) \
         VALUES ('Ops', 'ops', 'tab\there', 1, 2)",
    )
    .await;
    sql(
        app,
        format!(
            "INSERT INTO group_members (group_id, user_id, source, created_at) \
             SELECT id, {dave}, 'admin', 3 FROM groups WHERE name_key = 'ops'"
        ),
    )
    .await;
    sql(
        app,
        "INSERT INTO apps (name, name_key, url, icon, hosts, paths, access, roles, \
         viewers_read_only, source, created_at, updated_at) VALUES ('Wiki', 'wiki', \
         'https://wiki.example.com', '📚', 'wiki.example.com', '/admin', 'restricted', 'admin', \
         1, 'ui', 1, 2)",
    )
    .await;
    sql(
        app,
        "INSERT INTO app_groups (app_id, group_id) SELECT a.id, g.id FROM apps a, groups g \
         WHERE a.name_key = 'wiki' AND g.name_key = 'ops'",
    )
    .await;
    sql(
        app,
        format!(
            "INSERT INTO app_users (app_id, user_id) SELECT id, {carol} FROM apps \
             WHERE name_key = 'wiki'"
        ),
    )
    .await;
    // Second factor (issue 14): rows as the service writes them (the sealed secret is
    // opaque here; the tables must come across equal). An enrolment not yet confirmed, so
    // carol still signs in with her password alone below.
    sql(
        app,
        format!(
            "INSERT INTO user_totp (user_id, secret, confirmed_at, last_step, created_at) \
             VALUES ({carol}, 'sealed:AAAA', NULL, 58800000, 6)"
        ),
    )
    .await;
    sql(
        app,
        format!(
            "INSERT INTO recovery_codes (user_id, code_hmac, used_at) VALUES \
             ({carol}, 'f00d', NULL), ({carol}, 'beef', 8)"
        ),
    )
    .await;
    // Passkeys (issue 15): the serialised credential is opaque here. Dave's (deleted, never
    // signs in below), so nobody's sign-in grows a second step.
    sql(
        app,
        format!(
            "INSERT INTO passkeys (user_id, name, credential_id, user_handle, passkey, created_at, last_used_at) \
             VALUES ({dave}, 'Phone', 'Y3JlZA', '0f8fad5b-d9cb-469f-a165-70867728950e', '{{\"cred\":{{}}}}', 9, 10)"
        ),
    )
    .await;
    // Invite links (issue 15): one used by carol, with a group, and one revoked.
    sql(
        app,
        format!(
            "INSERT INTO invites (token_hmac, email, username, role, needs_approval, created_by, \
             created_at, expires_at, used_at, used_by, revoked_at) VALUES \
             ('hmac-1', 'carol@example.com', 'Zoë''s', 'user', 0, NULL, 1, 2, 3, {carol}, NULL), \
             ('hmac-2', NULL, NULL, 'viewer', 1, {carol}, 4, 5, NULL, NULL, 6)"
        ),
    )
    .await;
    sql(
        app,
        "INSERT INTO invite_groups (invite_id, group_id) SELECT i.id, g.id FROM invites i, \
         groups g WHERE i.token_hmac = 'hmac-1' AND g.name_key = 'ops'",
    )
    .await;
    sql(
        app,
        "UPDATE settings SET registration_enabled = 1, auto_approve_registrations = 1, \
         second_factor_providers = 'corp'",
    )
    .await;
    sql(
        app,
        "INSERT INTO audit_events (at, actor, action, outcome, detail) \
         VALUES (9007199254740993, 'test', 'user.create', 'success', 'a \\ backslash')",
    )
    .await;
    // A session (not carried) and an audit event, through the real sign-in.
    api_login(app, ADMIN, ADMIN_PASSWORD).await;
    Fixture {
        api_key: created.secret,
    }
}

/// The stored client secret of provider `corp`, decrypted with the app's server secret.
async fn provider_secret(app: &TestApp) -> Option<String> {
    #[derive(QueryableByName)]
    struct Sealed {
        #[diesel(sql_type = sql_types::Text)]
        client_secret: String,
    }
    let sealed = app
        .state
        .db
        .run(|c| {
            diesel::sql_query("SELECT client_secret FROM oidc_providers WHERE id = 'corp'")
                .load::<Sealed>(c)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    hallpass::service::sso::open(&app.state.secret, &sealed.first()?.client_secret)
}

/// `GET /api/auth/me` with `Authorization: Bearer key`.
async fn key_status(app: &TestApp, key: &str) -> u16 {
    app.client()
        .get(app.url("/api/auth/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A fresh database of kind `db` whose data directory holds `secret_from`'s `secret.key`.
fn fresh_with_secret(db: Db, secret_from: &Path) -> Option<TestDb> {
    let t = TestDb::new(db)?;
    std::fs::copy(
        secret_from.join("secret.key"),
        t.data_dir().join("secret.key"),
    )
    .unwrap();
    Some(t)
}

/// Issue 13, point 4: SQLite → PostgreSQL → SQLite with every table equal, API keys that
/// still authenticate, providers whose client secret still decrypts, and fresh ids for new
/// rows on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_to_sqlite() {
    let Some(source) = TestApp::with_admin(Db::Sqlite).await else {
        return;
    };
    let fixture = populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("from-sqlite.jsonl.gz");
    backup_of(&source, &first, &[]).await;
    let original = snapshot(&source.state.db).await;
    for (table, rows) in &original {
        assert!(!rows.is_empty(), "the fixture leaves table {table} empty");
    }

    let Some(pg) = fresh_with_secret(Db::Postgres, source.data_dir()) else {
        return;
    };
    let ran = restore(&pg.url, pg.data_dir(), &[first.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        !ran.stderr.contains("WARNING"),
        "same secret: {}",
        ran.stderr
    );
    assert_eq!(
        snapshot(&pool(&pg.url)).await,
        original,
        "SQLite → PostgreSQL"
    );

    let second = dir.path().join("from-postgres.jsonl");
    let ran = run(
        hallpass(
            &pg.url,
            pg.data_dir(),
            &["backup", second.to_str().unwrap()],
        ),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let Some(back) = fresh_with_secret(Db::Sqlite, source.data_dir()) else {
        return;
    };
    let ran = restore(&back.url, back.data_dir(), &[second.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        snapshot(&pool(&back.url)).await,
        original,
        "PostgreSQL → SQLite"
    );

    for target in [pg, back] {
        let app = TestApp::start_on(target, |_| {}, false).await;
        assert_eq!(
            key_status(&app, &fixture.api_key).await,
            200,
            "the API key works"
        );
        assert_eq!(provider_secret(&app).await.as_deref(), Some(CLIENT_SECRET));
        let (c, _) = api_login(&app, "carol", MEMBER_PASSWORD).await;
        let me: Value = c
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["username"], "carol", "{me}");
        // New rows get ids after the restored ones (PostgreSQL: the sequences were reset).
        let max = original["users"]
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .max()
            .unwrap();
        assert!(add_user(&app, "erin", "user").await > max);
    }
}

/// The SQLite catalog's ordinary tables and their columns, read independently of the code
/// under test (FTS indexes and their shadow tables are derived data, rebuilt by triggers).
fn catalog(conn: &mut hallpass::db::Conn) -> BTreeMap<String, Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::Text)]
        t: String,
        #[diesel(sql_type = sql_types::Text)]
        c: String,
    }
    let query = match conn {
        hallpass::db::AnyConnection::Sqlite(_) => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' \
             AND m.name <> '__diesel_schema_migrations' \
             AND m.sql NOT LIKE 'CREATE VIRTUAL TABLE%' \
             AND NOT EXISTS (SELECT 1 FROM sqlite_master v WHERE v.sql LIKE 'CREATE VIRTUAL TABLE%' \
                             AND m.name LIKE v.name || '^_%' ESCAPE '^') \
             ORDER BY m.name, p.cid"
        }
        hallpass::db::AnyConnection::Postgresql(_) => {
            "SELECT c.table_name::text AS t, c.column_name::text AS c \
             FROM information_schema.columns c JOIN information_schema.tables t \
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             AND c.table_name <> '__diesel_schema_migrations' \
             ORDER BY c.table_name, c.ordinal_position"
        }
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in diesel::sql_query(query).load::<Row>(conn).unwrap() {
        out.entry(r.t).or_default().push(r.c);
    }
    out
}

/// Point 1 and the guard for later migrations: the backup carries every table and every
/// column the migrated database has, but the documented few it leaves out.
async fn backup_carries_every_table_and_column(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    backup_of(&app, &file, &[]).await;
    let lines = lines_of(&file);
    // `-` writes the same to stdout (plain: pipe it through gzip if wanted).
    let url = app.state.config.database.url.expose().to_owned();
    let ran = run(hallpass(&url, app.data_dir(), &["backup", "-"]), None).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let piped: Vec<Value> = String::from_utf8(ran.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(piped.len(), lines.len());
    assert_eq!(piped[1..], lines[1..], "same tables and rows as the file");
    let header = &lines[0];
    assert_eq!(header["format"], "hallpass-backup");
    assert_eq!(header["version"], 1);
    assert_eq!(
        header["schema"],
        hallpass::db::migrations::latest_known(app.state.db.backend()),
    );
    assert!(lines.last().unwrap()["end"].is_object());
    let in_file: BTreeMap<String, Vec<String>> = lines
        .iter()
        .filter(|l| l["table"].is_string())
        .map(|l| {
            let cols = l["columns"].as_array().unwrap();
            (
                l["table"].as_str().unwrap().to_owned(),
                cols.iter()
                    .map(|c| c[0].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let mut expected = app
        .state
        .db
        .run(|c| Ok::<_, DbError>(catalog(c)))
        .await
        .unwrap();
    for left_out in hallpass::db::backup::LEFT_OUT {
        assert!(
            expected.remove(*left_out).is_some(),
            "LEFT_OUT names {left_out}, which the database does not have"
        );
    }
    assert_eq!(
        in_file, expected,
        "every table (and column) of the database is in the backup, in the catalog's order"
    );
}

/// Point 2: a database with accounts is refused (exit 2, nothing changed) unless --force,
/// which needs --yes when it cannot ask.
async fn restore_refuses_a_database_with_accounts(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("before.jsonl.gz");
    backup_of(&app, &file, &[]).await;
    add_user(&app, "late", "user").await;
    let url = app.state.config.database.url.expose().to_owned();
    let before = snapshot(&app.state.db).await;

    let ran = restore(&url, app.data_dir(), &[file.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("already has 2 account(s)")
            && ran.stderr.contains("Nothing was changed")
            && ran.stderr.contains("--force"),
        "{}",
        ran.stderr
    );
    assert_eq!(snapshot(&app.state.db).await, before);

    let ran = restore(&url, app.data_dir(), &["--force", file.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--yes"), "{}", ran.stderr);
    assert_eq!(snapshot(&app.state.db).await, before);

    // On a terminal, --force asks; anything but `restore` cancels.
    let force = async |answer: &'static str| {
        let cmd = hallpass(
            &url,
            app.data_dir(),
            &["restore", "--force", file.to_str().unwrap()],
        );
        crate::recover::on_terminal(cmd, &[("Type restore to confirm:", answer)]).await
    };
    let (code, shown) = force("no").await;
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("replaces ALL its accounts") && shown.contains("not confirmed"),
        "{shown}"
    );
    assert_eq!(snapshot(&app.state.db).await, before);
    let (code, shown) = force("restore").await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(snapshot(&app.state.db).await["users"].len(), 1, "{shown}");
    add_user(&app, "late", "user").await;

    let ran = restore(
        &url,
        app.data_dir(),
        &["--force", "--yes", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let after = snapshot(&app.state.db).await;
    assert_eq!(
        after["users"].len(),
        1,
        "only the backup's admin: {:?}",
        after["users"]
    );
    // The server on it sees the change at once.
    let r = app.login(&app.client(), "late", MEMBER_PASSWORD).await;
    assert_ne!(r.status(), 303, "the account made after the backup is gone");
}

/// Point 7: damaged, newer or hand-edited files are refused with a clear message, exit 2,
/// and the target database is exactly as before.
async fn bad_files_change_nothing(db: Db) {
    let Some(source) = TestApp::with_admin(db).await else {
        return;
    };
    add_user(&source, "carol", "user").await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    backup_of(&source, &good, &[]).await;
    let text = std::fs::read_to_string(&good).unwrap();
    let good_gz = dir.path().join("good.jsonl.gz");
    backup_of(&source, &good_gz, &[]).await;
    let gz = std::fs::read(&good_gz).unwrap();

    let lines: Vec<&str> = text.lines().collect();
    let users_at = lines
        .iter()
        .position(|l| l.starts_with("{\"table\":\"users\""))
        .unwrap();
    let row: Vec<Value> = serde_json::from_str(lines[users_at + 2]).unwrap();
    let mut duplicate = row.clone();
    duplicate[0] = Value::from(row[0].as_i64().unwrap() + 100);
    let mut edited: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    edited.insert(users_at + 3, serde_json::to_string(&duplicate).unwrap());
    let end: Value = serde_json::from_str(edited.last().unwrap()).unwrap();
    let rows = end["end"]["rows"].as_u64().unwrap() + 1;
    *edited.last_mut().unwrap() = format!(
        "{{\"end\":{{\"tables\":{},\"rows\":{rows}}}}}",
        end["end"]["tables"]
    );
    let mut wrong_type = edited.clone();
    let mut bad = duplicate.clone();
    bad[0] = Value::from("one");
    wrong_type[users_at + 3] = serde_json::to_string(&bad).unwrap();
    let mut damaged_gz = gz.clone();
    let middle = damaged_gz.len() / 2;
    for b in &mut damaged_gz[middle..middle + 16] {
        *b ^= 0x5a;
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut.jsonl",
            text.as_bytes()[..text.len() * 2 / 3].to_vec(),
            "the backup is incomplete",
        ),
        (
            "cut-at-a-line.jsonl",
            lines[..lines.len() - 1]
                .join("\n")
                .into_bytes()
                .into_iter()
                .chain(*b"\n")
                .collect(),
            "the backup is incomplete",
        ),
        ("cut.jsonl.gz", gz[..gz.len() - 40].to_vec(), "incomplete"),
        (
            "newer-format.jsonl",
            text.replacen("\"version\":1", "\"version\":2", 1)
                .into_bytes(),
            "written by a newer Hallpass (backup format 2",
        ),
        (
            "newer-schema.jsonl",
            text.replacen("\"schema\":\"2", "\"schema\":\"9", 1)
                .into_bytes(),
            "comes from a newer Hallpass (database migration 9",
        ),
        (
            "plain.jsonl.gz",
            text.as_bytes().to_vec(),
            "the name ends in .gz, but the file is not gzip-compressed",
        ),
        ("damaged.jsonl.gz", damaged_gz, "line "),
        (
            "duplicate-username.jsonl",
            (edited.join("\n") + "\n").into_bytes(),
            "the database refused the rows of table users",
        ),
        (
            "wrong-type.jsonl",
            (wrong_type.join("\n") + "\n").into_bytes(),
            "column id: expected integer",
        ),
        (
            "not-a-backup.txt",
            b"id,username\n1,admin\n".to_vec(),
            "not a Hallpass backup",
        ),
        (
            "empty.jsonl",
            Vec::new(),
            "not a Hallpass backup: the file is empty",
        ),
    ];
    let Some(target) = TestApp::empty(db).await else {
        return;
    };
    let url = target.state.config.database.url.expose().to_owned();
    let before = snapshot(&target.state.db).await;
    for (name, bytes, says) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let ran = restore(&url, target.data_dir(), &[file.to_str().unwrap()]).await;
        assert_eq!(ran.code, Some(2), "{name}: {}", ran.stderr);
        assert!(
            ran.stderr.contains(says) && ran.stderr.contains("Nothing was changed"),
            "{name}: expected {says:?} in: {}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("panicked"), "{name}: {}", ran.stderr);
        assert_eq!(
            snapshot(&target.state.db).await,
            before,
            "{name} changed the target"
        );
    }
    // The same file unedited loads (the cases above fail for what was done to them).
    let ran = restore(&url, target.data_dir(), &[good.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

/// Point 3: the backup holds the secret's fingerprint (never the secret); a restore under
/// another secret warns and says what breaks and what to do; `--include-secret` carries it.
async fn secret_fingerprint_and_include_secret(db: Db) {
    let Some(source) = TestApp::with_admin(db).await else {
        return;
    };
    let fixture = populate(&source).await;
    let secret_bytes = std::fs::read(source.data_dir().join("secret.key")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.jsonl");
    backup_of(&source, &plain, &[]).await;
    let header = &lines_of(&plain)[0];
    assert_eq!(
        header["secret_fingerprint"],
        source.state.secret.fingerprint()
    );
    assert!(header.get("secret").is_none(), "{header}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&secret_bytes);
    assert!(!std::fs::read_to_string(&plain).unwrap().contains(&b64));

    let Some(other) = TestDb::new(db) else { return };
    let ran = restore(&other.url, other.data_dir(), &[plain.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("WARNING")
            && ran
                .stderr
                .contains("1 restored API key(s) will not authenticate")
            && ran.stderr.contains("1 SSO provider(s) cannot be decrypted")
            && ran.stderr.contains("Copy secret.key"),
        "{}",
        ran.stderr
    );
    let app = TestApp::start_on(other, |_| {}, false).await;
    assert_eq!(
        key_status(&app, &fixture.api_key).await,
        401,
        "as the warning said"
    );
    drop(app);

    let whole = dir.path().join("whole.jsonl.gz");
    backup_of(&source, &whole, &["--include-secret"]).await;
    assert_eq!(lines_of(&whole)[0]["secret"], b64.as_str());
    let Some(other) = TestDb::new(db) else { return };
    let ran = restore(&other.url, other.data_dir(), &[whole.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(!ran.stderr.contains("WARNING"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("server secret is now"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        std::fs::read(other.data_dir().join("secret.key")).unwrap(),
        secret_bytes
    );
    let app = TestApp::start_on(other, |_| {}, false).await;
    assert_eq!(key_status(&app, &fixture.api_key).await, 200);
    assert_eq!(provider_secret(&app).await.as_deref(), Some(CLIENT_SECRET));
}

/// A `multipart/form-data` body with text fields and one file; returns (content type, body).
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "hallpass-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"backup\"; \
             filename=\"hallpass.jsonl.gz\"\r\nContent-Type: application/gzip\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts the setup page's restore form with a token from `/setup` (or `/login`).
async fn post_restore(
    app: &TestApp,
    c: &reqwest::Client,
    code: &str,
    file: &[u8],
) -> reqwest::Response {
    let html = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = match csrf_in(&html) {
        Some(t) => t,
        None => app.csrf(c, "/login").await,
    };
    let (content_type, body) = multipart(&[("csrf_token", &token), ("setup_code", code)], file);
    c.post(app.url("/setup/restore"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Point 5: on an instance without accounts, the setup page restores a backup (same code
/// as the wizard; bad files refused with nothing changed); afterwards the option is gone.
async fn restore_from_the_setup_page(db: Db) {
    let Some(source) = TestApp::with_admin(db).await else {
        return;
    };
    let fixture = populate(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.jsonl.gz");
    backup_of(&source, &file, &[]).await;
    let bytes = std::fs::read(&file).unwrap();

    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let page = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Restore from backup") && page.contains("action=\"/setup/restore\""));
    let code = app.state.setup.code().unwrap();

    let r = post_restore(&app, &c, "WRONG-CODE", &bytes).await;
    assert_eq!(r.status(), 422);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("The setup code is not correct")
    );
    let r = post_restore(&app, &c, &code, &bytes[..bytes.len() / 2]).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"backup-error\"") && html.contains("incomplete"),
        "{html}"
    );
    assert!(
        snapshot(&app.state.db).await["users"].is_empty(),
        "nothing changed"
    );

    let r = post_restore(&app, &c, &code, &bytes).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Hallpass is restored"), "{html}");
    // Another data directory, so another secret: the page says what that breaks.
    assert!(
        html.contains("id=\"restore-secret\"") && html.contains("will not authenticate"),
        "{html}"
    );
    assert_eq!(key_status(&app, &fixture.api_key).await, 401);
    assert_eq!(
        app.login(&app.client(), ADMIN, ADMIN_PASSWORD)
            .await
            .status(),
        303
    );

    let page = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Restore from backup"), "{page}");
    let r = post_restore(&app, &app.client(), &code, &bytes).await;
    assert_eq!(r.status(), 404, "gone once accounts exist");
}

/// Point 5: with an account, `POST /setup/restore` answers 404 whatever it carries; an
/// upload over `backup.upload_limit` is refused before anything is read into the database.
async fn setup_restore_is_gone_once_an_account_exists(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("b.jsonl.gz");
    backup_of(&app, &file, &[]).await;
    let bytes = std::fs::read(&file).unwrap();
    let c = app.client();
    let page = c
        .get(app.url("/setup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Restore from backup"));
    let r = post_restore(&app, &c, "ANY-CODE", &bytes).await;
    assert_eq!(r.status(), 404);
    let admin = app.admin_client().await;
    let r = post_restore(&app, &admin, "ANY-CODE", &bytes).await;
    assert_eq!(r.status(), 404, "not for admins either");

    let Some(small) = TestApp::start(db, |c| c.backup.upload_limit = 2048, false).await else {
        return;
    };
    let code = small.state.setup.code().unwrap();
    let big = vec![b'x'; 8 * 1024];
    let r = post_restore(&small, &small.client(), &code, &big).await;
    assert_eq!(r.status(), 413);
    assert!(snapshot(&small.state.db).await["users"].is_empty());
}

/// Point 6: scheduled backups land in `backup.dir`, only `backup.keep` are kept, each can be
/// restored; a failure is logged, audited and shown on Diagnostics.
async fn scheduled_backups_rotate_and_report_failures(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let to = backups.clone();
    let Some(app) = TestApp::start(
        db,
        move |c| {
            c.backup.schedule = Some(hallpass::config::HumanDuration::secs(1));
            c.backup.dir = Some(to);
            c.backup.keep = 2;
        },
        true,
    )
    .await
    else {
        return;
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        if let Ok(entries) = std::fs::read_dir(&backups) {
            for e in entries.flatten() {
                seen.insert(e.file_name().into_string().unwrap());
            }
        }
        if seen.iter().filter(|n| n.ends_with(".jsonl.gz")).count() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen.len() >= 4, "backups written: {seen:?}");
    // A new backup is written before the oldest are removed, so a listing taken in between
    // holds `keep` + 1; once that round's pruning ran, no more than `keep` may remain.
    let listed = || -> Vec<PathBuf> {
        std::fs::read_dir(&backups)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
            .collect()
    };
    let mut kept = listed();
    for _ in 0..50 {
        if kept.len() <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        kept = listed();
    }
    assert!(kept.len() <= 2, "kept: {kept:?}");
    let newest = kept.iter().max().unwrap();
    let Some(target) = TestDb::new(db) else {
        return;
    };
    let ran = restore(&target.url, target.data_dir(), &[newest.to_str().unwrap()]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let admin = app.admin_client().await;
    let page = admin
        .get(app.url("/admin/diagnostics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"diag-backup-ok\""), "{page}");
    drop(app);

    // A directory that cannot be created (its parent is a file).
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let to = blocker.join("backups");
    let Some(app) = TestApp::start(
        db,
        move |c| {
            c.backup.schedule = Some(hallpass::config::HumanDuration::secs(1));
            c.backup.dir = Some(to);
        },
        true,
    )
    .await
    else {
        return;
    };
    for _ in 0..100 {
        if app.state.backups.last().failure.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin = app.admin_client().await;
    let page = admin
        .get(app.url("/admin/diagnostics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("id=\"diag-backup-failure\"")
            && page.contains("cannot create the backup directory"),
        "{page}"
    );
    let events = audit_events(&app, "backup.failed").await;
    assert!(!events.is_empty());
    assert_eq!(events[0].outcome, "failure");
}

/// Point 1: a backup taken while another connection keeps committing is one snapshot: every
/// account in it has the audit event written in the same transaction (the audit log is read
/// before the accounts, so a table-by-table read would catch accounts without theirs), and
/// the progress line appears on a terminal only.
async fn backup_is_one_snapshot_while_writes_go_on(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    // A long audit log, so reading it takes a while.
    sql(
        &app,
        "INSERT INTO audit_events (at, actor, action, outcome, detail) \
         SELECT 1, 'filler', 'user.update', 'success', 'x' \
         FROM (SELECT 1 FROM audit_events) a, (SELECT 1 AS n UNION ALL SELECT 2 UNION ALL \
         SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5) b",
    )
    .await;
    for _ in 0..12 {
        sql(
            &app,
            "INSERT INTO audit_events (at, actor, action, outcome, detail) \
             SELECT at, actor, action, outcome, detail FROM audit_events WHERE actor = 'filler'",
        )
        .await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (app.state.db.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                db.run(move |c| {
                    use diesel::Connection;
                    c.transaction(|c| {
                        diesel::sql_query(format!(
                            "INSERT INTO users (username, username_key, role, status, \
                             session_version, created_at, updated_at, search_key) VALUES \
                             ('w{n}', 'w{n}', 'user', 'active', 1, 1, 1, 'w{n}')"
                        ))
                        .execute(c)?;
                        diesel::sql_query(format!(
                            "INSERT INTO audit_events (at, actor, action, target, outcome) \
                             VALUES (2, 'writer', 'user.create', 'w{n}', 'success')"
                        ))
                        .execute(c)
                    })
                    .map_err(DbError::from)
                })
                .await
                .unwrap();
            }
            n
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let url = app.state.config.database.url.expose().to_owned();
    for i in 0..3 {
        let file = dir.path().join(format!("busy-{i}.jsonl"));
        let cmd = hallpass(&url, app.data_dir(), &["backup", file.to_str().unwrap()]);
        let (code, shown) = crate::recover::on_terminal(cmd, &[]).await;
        assert_eq!(code, Some(0), "{shown}");
        assert!(
            shown.contains("backup: 0 rows… (apps)"),
            "a progress line: {shown}"
        );
        let lines = lines_of(&file);
        let mut table = String::new();
        let (mut users, mut created) = (Vec::new(), std::collections::HashSet::new());
        for l in &lines[1..] {
            if let Some(t) = l["table"].as_str() {
                table = t.to_owned();
            } else if table == "users" && l[1].as_str().unwrap().starts_with('w') {
                users.push(l[1].as_str().unwrap().to_owned());
            } else if table == "audit_events" && l[3] == "writer" {
                created.insert(l[5].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(
            users.len(),
            created.len(),
            "backup {i}: accounts and their events"
        );
        assert!(users.iter().all(|u| created.contains(u)), "backup {i}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 3, "the writer kept writing");
    // Without a terminal, no progress line.
    let file = dir.path().join("quiet.jsonl");
    let ran = run(
        hallpass(&url, app.data_dir(), &["backup", file.to_str().unwrap()]),
        None,
    )
    .await;
    assert!(!ran.stderr.contains("rows…"), "{}", ran.stderr);
}

both_databases!(
    backup_is_one_snapshot_while_writes_go_on,
    backup_carries_every_table_and_column,
    restore_refuses_a_database_with_accounts,
    bad_files_change_nothing,
    secret_fingerprint_and_include_secret,
    restore_from_the_setup_page,
    setup_restore_is_gone_once_an_account_exists,
    scheduled_backups_rotate_and_report_failures,
);

/// The setup page's restore in a real browser (a file chosen in the file input), with the
/// screenshots of `docs/screens/restore-from-backup.md` and `setup-restored.md`.
async fn browser_restore_from_backup(db: Db) {
    use crate::support::browser::{Browser, Options};
    let Some(source) = TestApp::with_admin(db).await else {
        return;
    };
    add_user(&source, "carol", "user").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hallpass.jsonl.gz");
    backup_of(&source, &file, &[]).await;
    // A fixed date in the header, so the screenshot is the same on every run.
    let text = lines_of(&file)
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            if i == 0 {
                l["created_at"] = Value::from("2026-11-01T12:00:00Z");
            }
            serde_json::to_string(&l).unwrap() + "\n"
        })
        .collect::<String>();
    let upload = dir.path().join("hallpass.jsonl");
    std::fs::write(&upload, text).unwrap();
    // The same secret on the target: no warning on the page.
    let Some(target) = fresh_with_secret(db, source.data_dir()) else {
        return;
    };
    let app = TestApp::start_on(target, |_| {}, false).await;
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    b.goto("/setup").await;
    assert_eq!(b.text("#restore h2").await, "Restore from backup");
    b.fill("#restore_setup_code", "WRONG-CODE").await;
    b.find("#backup")
        .await
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    b.click("#restore button[type=submit]").await;
    b.wait_until(
        "the code error",
        "return document.querySelector('#restore_setup_code-error') !== null;",
    )
    .await;
    assert_eq!(b.path().await, "/setup/restore");
    b.screenshot("restore-from-backup").await;

    let code = app.state.setup.code().unwrap();
    b.fill("#restore_setup_code", &code).await;
    b.find("#backup")
        .await
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    b.click("#restore button[type=submit]").await;
    b.wait_until(
        "the restored page",
        "return document.querySelector('#restore-done') !== null;",
    )
    .await;
    assert_eq!(b.text("h1").await, "Hallpass is restored");
    assert!(
        !b.exists("#restore-secret").await,
        "same secret: no warning"
    );
    b.screenshot("setup-restored").await;
    b.click("a.btn[href='/login']").await;
    b.wait_for_path("/login").await;
    b.fill("#username", "carol").await;
    b.fill("#password", MEMBER_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/").await;
}

both_databases!(browser_restore_from_backup);
