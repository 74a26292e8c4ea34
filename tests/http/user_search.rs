//! The user table's search (issue 12, point 4): Unicode case-insensitive "contains" on
//! username, email and display name through the trigram indexes, kept in step with every
//! write; short searches; literal `%` and `_`; the capped pending badge.

use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, sql};
use hallpass::domain::Search;

both_databases!(
    search_is_unicode_case_insensitive_on_each_field,
    search_follows_renames_email_and_display_name_changes_delete_and_purge,
    short_searches_match_the_start_of_the_username,
    like_metacharacters_and_quotes_match_literally,
    common_text_pages_like_rare_text,
    accounts_from_before_the_upgrade_are_found_after_start_up,
    pending_badge_follows_approve_and_reject_and_caps_at_99,
    search_uses_its_index,
);

struct Admin {
    c: reqwest::Client,
    token: String,
}

async fn admin(app: &TestApp) -> Admin {
    let (c, token) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
    Admin { c, token }
}

impl Admin {
    async fn create(&self, app: &TestApp, username: &str, email: &str, display: &str) -> i64 {
        let r = self
            .c
            .post(app.url("/api/admin/users"))
            .header("X-CSRF-Token", &self.token)
            .json(&json!({"username": username, "email": email, "role": "user"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{username}");
        let id = r.json::<Value>().await.unwrap()["user"]["id"]
            .as_i64()
            .unwrap();
        if !display.is_empty() {
            self.patch(app, id, json!({ "display_name": display }))
                .await;
        }
        id
    }

    async fn patch(&self, app: &TestApp, id: i64, body: Value) {
        let r = self
            .c
            .patch(app.url(&format!("/api/admin/users/{id}")))
            .header("X-CSRF-Token", &self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}");
    }

    async fn act(&self, app: &TestApp, id: i64, action: &str, body: Value) -> u16 {
        self.c
            .post(app.url(&format!("/api/admin/users/{id}/{action}")))
            .header("X-CSRF-Token", &self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Usernames the JSON list returns for `?q=` (plus `extra` query parameters), in order.
    async fn search(&self, app: &TestApp, q: &str, extra: &str) -> Vec<String> {
        Self::names(&self.list(app, q, extra).await)
    }

    async fn list(&self, app: &TestApp, q: &str, extra: &str) -> Value {
        let url = reqwest::Url::parse_with_params(&app.url("/api/admin/users"), &[("q", q)])
            .unwrap()
            .to_string()
            + extra;
        let r = self.c.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{q}");
        r.json().await.unwrap()
    }

    fn names(v: &Value) -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The HTML user table for `?q=`, as a page (`fragment` false) or as the htmx fragment.
    async fn table(&self, app: &TestApp, q: &str, fragment: bool) -> Vec<String> {
        let url = reqwest::Url::parse_with_params(&app.url("/admin/users"), &[("q", q)]).unwrap();
        let mut req = self.c.get(url);
        if fragment {
            req = req
                .header("HX-Request", "true")
                .header("HX-Target", "user-table");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert_eq!(
            html.trim_start().starts_with("<div id=\"user-table\">"),
            fragment
        );
        html.split(r#"class="username">"#)
            .skip(1)
            .map(|s| s.split('<').next().unwrap().to_owned())
            .collect()
    }
}

async fn search_is_unicode_case_insensitive_on_each_field(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = admin(&app).await;
    a.create(&app, "zoe", "zoe@example.org", "Zoë Ärger-Straße")
        .await;
    a.create(&app, "ivan", "ivan.p@example.org", "Иван Петров")
        .await;
    a.create(&app, "nikos", "nikos@example.org", "Νίκος Σοφίας")
        .await;
    a.create(&app, "Bobby", "Mail.Box@Example.NET", "").await;
    a.create(&app, "jo", "jo@müller.example", "").await;

    // Display names: German, Cyrillic and Greek, either case, either sigma.
    for (q, want) in [
        ("ärger", "zoe"),
        ("ÄRGER", "zoe"),
        ("zoË", "zoe"),
        ("STRASSE", "zoe"),
        ("straße", "zoe"),
        ("иван", "ivan"),
        ("ПЕТРОВ", "ivan"),
        ("ΝΊΚΟΣ", "nikos"),
        ("νίκοσ", "nikos"),
        ("σοφίασ", "nikos"),
        // Email addresses, the domain included.
        ("MAIL.BOX@", "Bobby"),
        ("box@example.net", "Bobby"),
        ("MÜLLER", "jo"),
        // Usernames, anywhere in them.
        ("OBB", "Bobby"),
        ("BBY", "Bobby"),
    ] {
        assert_eq!(a.search(&app, q, "").await, [want], "q={q}");
    }
    assert_eq!(a.search(&app, "zzz", "").await, Vec::<String>::new());
    assert_eq!(
        a.search(&app, "example.org", "").await,
        ["ivan", "nikos", "zoe"]
    );
    // The HTML page and its htmx fragment run the same search.
    assert_eq!(a.table(&app, "ÄRGER", false).await, ["zoe"]);
    assert_eq!(a.table(&app, "петров", true).await, ["ivan"]);
}

async fn search_follows_renames_email_and_display_name_changes_delete_and_purge(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = admin(&app).await;
    let id = a
        .create(&app, "carol", "carol@example.com", "Carol Jones")
        .await;
    assert_eq!(a.search(&app, "jones", "").await, ["carol"]);

    a.patch(&app, id, json!({"display_name": "Carol Smith"}))
        .await;
    assert!(a.search(&app, "jones", "").await.is_empty());
    assert_eq!(a.search(&app, "SMITH", "").await, ["carol"]);

    a.patch(&app, id, json!({"email": "cs@corp.test"})).await;
    assert!(a.search(&app, "carol@example", "").await.is_empty());
    assert_eq!(a.search(&app, "corp.test", "").await, ["carol"]);

    a.patch(&app, id, json!({"username": "kay"})).await;
    assert!(
        a.search(&app, "ca", "").await.is_empty(),
        "no username starts with ca"
    );
    assert_eq!(a.search(&app, "kay", "").await, ["kay"]);
    assert_eq!(a.search(&app, "ka", "").await, ["kay"]);

    // Soft delete: gone from the table, still found among deleted accounts.
    let r =
        a.c.delete(app.url(&format!("/api/admin/users/{id}")))
            .header("X-CSRF-Token", &a.token)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert!(a.search(&app, "smith", "").await.is_empty());
    assert_eq!(a.search(&app, "smith", "&status=deleted").await, ["kay"]);

    assert_eq!(
        a.act(&app, id, "purge", json!({"confirm": "kay"})).await,
        204
    );
    assert!(a.search(&app, "smith", "&status=deleted").await.is_empty());
    // Nothing of the account is left in the search index either.
    if db == Db::Sqlite {
        assert_eq!(fts_matches(&app, "smith").await, 0);
        assert_eq!(fts_matches(&app, "example.com").await, 1, "the admin's");
    }
}

async fn short_searches_match_the_start_of_the_username(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = admin(&app).await;
    a.create(&app, "al", "x1@example.com", "").await;
    a.create(&app, "Alice", "x2@example.com", "").await;
    a.create(&app, "mal", "al@example.com", "Al Bundy").await;
    // One or two characters: usernames starting with them, either case; not "mal", whose
    // email and display name only contain or start with "al".
    assert_eq!(a.search(&app, "AL", "").await, ["al", "Alice"]);
    assert_eq!(a.search(&app, "a", "").await, ["admin", "al", "Alice"]);
    assert_eq!(a.search(&app, " m ", "").await, ["mal"]);
    assert!(a.search(&app, "ä", "").await.is_empty());
    assert!(a.search(&app, "%", "").await.is_empty());
    // Three characters: contains again.
    assert_eq!(a.search(&app, "l b", "").await, ["mal"]);
    assert_eq!(a.search(&app, "al@", "").await, ["mal"]);
    // Combined with a filter and the keyset order.
    assert_eq!(
        a.search(&app, "al", "&sort=username&dir=desc").await,
        ["Alice", "al"]
    );
}

async fn like_metacharacters_and_quotes_match_literally(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = admin(&app).await;
    a.create(&app, "pct", "pct@example.com", "100% sure").await;
    a.create(&app, "plain", "plain@example.com", "100 sure")
        .await;
    a.create(&app, "under", "under@example.com", "a_b test")
        .await;
    a.create(&app, "axb", "axb@example.com", "aXb test").await;
    a.create(&app, "quote", "quote@example.com", "say \"hi\" now")
        .await;
    a.create(&app, "slash", "slash@example.com", "C:\\Temp")
        .await;
    assert_eq!(a.search(&app, "0% s", "").await, ["pct"]);
    assert_eq!(a.search(&app, "100%", "").await, ["pct"]);
    assert_eq!(a.search(&app, "a_b", "").await, ["under"]);
    assert!(a.search(&app, "%%%", "").await.is_empty());
    assert!(a.search(&app, "___", "").await.is_empty());
    assert_eq!(a.search(&app, "\"hi\"", "").await, ["quote"]);
    assert_eq!(a.search(&app, "\"hi", "").await, ["quote"]);
    assert_eq!(a.search(&app, ":\\te", "").await, ["slash"]);
    assert!(a.search(&app, "OR x", "").await.is_empty());
}

/// SQLite: how many entries of the FTS index contain `text`.
async fn fts_matches(app: &TestApp, text: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let phrase = format!("\"{text}\"");
    app.state
        .db
        .run(move |c| {
            use diesel::RunQueryDsl;
            diesel::sql_query("SELECT count(*) AS n FROM users_search WHERE users_search MATCH ?")
                .bind::<diesel::sql_types::Text, _>(phrase)
                .get_result::<Count>(c)
                .map_err(hallpass::db::DbError::from)
        })
        .await
        .unwrap()
        .n
}

/// Inserts `n` accounts `bulkNNNNN` (newest last) with an empty search key, as accounts
/// from before the search-key migration have.
async fn insert_bulk(app: &TestApp, n: usize) {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "('bulk{i:05}', 'bulk{i:05}', 'Bulk{i}@Mail.Example', 'bulk{i}@mail.example', \
                 'Bulk Person {i}', 'user', 'active', 1, {}, 0)",
                1_700_000_000 + i
            )
        })
        .collect();
    sql(
        app,
        format!(
            "INSERT INTO users (username, username_key, email, email_key, display_name, role, \
             status, session_version, created_at, updated_at) VALUES {}",
            rows.join(", ")
        ),
    )
    .await;
}

async fn fill(app: &TestApp) -> usize {
    app.state
        .db
        .run(hallpass::db::user_search::fill_search_keys)
        .await
        .unwrap()
}

async fn common_text_pages_like_rare_text(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    // More accounts contain "mail.example" than SQLite's rare-text route takes, so that
    // search walks the sort order instead: the pages must be the same either way.
    insert_bulk(&app, 2100).await;
    assert_eq!(fill(&app).await, 2100);
    let a = admin(&app).await;
    let first = a.list(&app, "MAIL.EXAMPLE", "").await;
    let names = Admin::names(&first);
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "bulk00000");
    assert_eq!(names[49], "bulk00049");
    let next = first["next"].as_str().unwrap().to_owned();
    let second = a
        .search(&app, "mail.example", &format!("&after={next}"))
        .await;
    assert_eq!(second[0], "bulk00050");
    let newest = a
        .search(&app, "bulk person", "&sort=created&dir=desc")
        .await;
    assert_eq!(newest[0], "bulk02099");
    // Rare text among them: one account, and a handful.
    assert_eq!(a.search(&app, "person 2077", "").await, ["bulk02077"]);
    assert_eq!(
        a.search(&app, "bulk0209", "").await,
        (2090..2100)
            .map(|i| format!("bulk{i:05}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(fill(&app).await, 0, "every key is filled now");
}

async fn accounts_from_before_the_upgrade_are_found_after_start_up(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    insert_bulk(&app, 3).await;
    // Like a database the search migration just ran on: keys not written yet.
    sql(&app, "UPDATE users SET search_key = ''").await;
    let test_db = app.stop_keep_db().await;
    let app = TestApp::start_on(test_db, |_| {}, false).await;
    let a = admin(&app).await;
    assert_eq!(a.search(&app, "PERSON 1", "").await, ["bulk00001"]);
    assert_eq!(a.search(&app, "admin@example", "").await, ["admin"]);
    assert_eq!(fill(&app).await, 0);
}

/// The pending badge of the navigation, as shown on an admin page (`None`: no badge, or
/// the empty, hidden one that an htmx action can fill out of band).
async fn badge(a: &Admin, app: &TestApp) -> Option<String> {
    let html =
        a.c.get(app.url("/admin/users"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    html.split(r#"id="nav-pending" title="Accounts awaiting approval">"#)
        .nth(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .filter(|count| !count.is_empty())
}

async fn pending_badge_follows_approve_and_reject_and_caps_at_99(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let a = admin(&app).await;
    let mut ids = Vec::new();
    for name in ["p1", "p2", "p3"] {
        ids.push(
            a.create(&app, name, &format!("{name}@example.com"), "")
                .await,
        );
    }
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key IN ('p1', 'p2', 'p3')",
    )
    .await;
    assert_eq!(badge(&a, &app).await.as_deref(), Some("3"));
    assert_eq!(a.act(&app, ids[0], "approve", json!({})).await, 200);
    assert_eq!(badge(&a, &app).await.as_deref(), Some("2"));
    assert_eq!(a.act(&app, ids[1], "reject", json!({})).await, 200);
    assert_eq!(badge(&a, &app).await.as_deref(), Some("1"));
    assert_eq!(a.act(&app, ids[2], "approve", json!({})).await, 200);
    assert_eq!(badge(&a, &app).await, None);
    // 99 is shown as is; from 100 on the badge stops counting.
    insert_bulk(&app, 100).await;
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key LIKE 'bulk%' \
         AND username_key <> 'bulk00099'",
    )
    .await;
    assert_eq!(badge(&a, &app).await.as_deref(), Some("99"));
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key = 'bulk00099'",
    )
    .await;
    assert_eq!(badge(&a, &app).await.as_deref(), Some("99+"));
    // The filtered table still lists every pending account, page by page.
    let v = a.list(&app, "", "&status=pending").await;
    assert_eq!(Admin::names(&v).len(), 50);
    assert!(v["next"].is_string());
}

async fn search_uses_its_index(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let plans = app
        .state
        .db
        .run(move |c| {
            use diesel::RunQueryDsl;
            if db == Db::Postgres {
                // The test table is tiny: without this the planner rightly reads it whole.
                // What is asserted is that the index can answer the search's predicate.
                diesel::sql_query("SET enable_seqscan = off").execute(c)?;
            }
            let contains = Search::parse("ÄRGER").unwrap();
            let prefix = Search::parse("Al").unwrap();
            let plans = (
                hallpass::db::user_search::plan(c, &contains),
                hallpass::db::user_search::plan(c, &prefix),
            );
            if db == Db::Postgres {
                diesel::sql_query("RESET enable_seqscan").execute(c)?;
            }
            Ok::<_, hallpass::db::DbError>((plans.0?, plans.1?))
        })
        .await
        .unwrap();
    let (contains, prefix) = plans;
    match db {
        Db::Sqlite => {
            assert!(
                contains.contains("VIRTUAL TABLE INDEX") && contains.contains("users_search"),
                "{contains}"
            );
            assert!(
                prefix.contains("(username_key>? AND username_key<?)"),
                "{prefix}"
            );
        }
        Db::Postgres => {
            assert!(
                contains.contains("Bitmap Index Scan on users_search_key"),
                "{contains}"
            );
            assert!(prefix.contains("users_username_prefix"), "{prefix}");
        }
    }
}
