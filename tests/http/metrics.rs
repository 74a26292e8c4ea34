//! `GET /metrics` (issue 16, point 1): the counters move by the right amount on real sign-ins,
//! rate-limit refusals and forward-auth checks; the text parses; no username or address is
//! ever a label; and who may scrape: 404 when off, 401 without the token, 403 outside
//! `metrics.allow` (127.0.0.2 is a second client address).

use std::collections::BTreeMap;

use hallpass::config::{Config, HumanDuration, MetricsToken};
use hallpass::domain::apps::{Access, AppSource, HostPattern};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, client_from};

both_databases!(
    a_scrape_counts_sign_ins_refusals_and_forward_auth,
    off_by_default_the_route_does_not_exist,
    the_token_is_required_and_compared_exactly,
    the_allow_list_is_matched_against_the_resolved_client_address,
    proxy_sign_ins_are_counted,
    a_burst_after_a_commit_reads_the_session_once,
    a_burst_after_a_commit_reads_the_api_key_once,
    a_burst_of_forward_auth_checks_after_a_commit_reads_once,
    a_burst_of_forward_auth_checks_with_an_api_key_reads_its_groups_once,
);

const TOKEN: &str = "scrape-token-0123456789abcdef";

fn with_token(c: &mut Config) {
    c.metrics.enabled = true;
    c.metrics.token = Some(MetricsToken::new(TOKEN.into()));
}

/// One scrape with the token, checked to parse; series → value.
async fn scrape(app: &TestApp) -> (BTreeMap<String, f64>, String) {
    let r = app
        .client()
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = r.text().await.unwrap();
    (parse(&text), text)
}

/// The Prometheus text format, strictly enough to catch a broken line: `# HELP`/`# TYPE`
/// comments, and `name{label="value",…} number` samples.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut series = BTreeMap::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram", "info", "unknown"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unknown comment: {line}");
        let (key, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && name.starts_with("hallpass_"),
            "bad name: {line}"
        );
        if let Some(labels) = key.strip_prefix(name)
            && !labels.is_empty()
        {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
            let inner = inner.unwrap_or_else(|| panic!("bad labels: {line}"));
            for pair in inner.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!v.trim_end_matches('"').contains('"'), "{line}");
            }
        }
        assert!(
            typed.iter().any(|t| name.starts_with(t.as_str())),
            "sample without a TYPE: {line}"
        );
        assert!(
            series.insert(key.to_owned(), value).is_none(),
            "twice: {line}"
        );
    }
    series
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("{key} not in the scrape: {:#?}", m.keys()))
}

/// Every series whose key starts with `prefix`, summed.
fn sum(m: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

async fn login(app: &TestApp, c: &reqwest::Client, user: &str, password: &str) -> u16 {
    app.login(c, user, password).await.status().as_u16()
}

async fn forward_auth(app: &TestApp, c: &reqwest::Client) -> u16 {
    wiki_check(app, c, "/page")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A forward-auth check of `GET https://wiki.example.com{uri}`, as a proxy asks it.
fn wiki_check(app: &TestApp, c: &reqwest::Client, uri: &str) -> reqwest::RequestBuilder {
    c.get(app.url("/api/authz/forward-auth"))
        .header("Accept", "application/json")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "wiki.example.com")
        .header("X-Forwarded-Uri", uri)
}

/// An app open to anyone signed in, written straight to the database (a commit every
/// process's caches see), with the rules version moved as the admin pages move it.
async fn add_app(app: &TestApp, name: &'static str, host: &str) {
    let hosts = vec![HostPattern::parse(host).unwrap()];
    app.state
        .db
        .run(move |c| {
            hallpass::db::apps::insert(
                c,
                &hallpass::db::apps::AppWrite {
                    name,
                    url: None,
                    icon: None,
                    hosts: &hosts,
                    paths: &[],
                    access: &Access::SignedIn,
                    viewers_read_only: false,
                    source: AppSource::Ui,
                },
            )?;
            hallpass::db::settings::bump_rules_version(c)
        })
        .await
        .unwrap();
}

async fn a_scrape_counts_sign_ins_refusals_and_forward_auth(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            with_token(c);
            c.server.public_url = Some("https://auth.example.com".parse().unwrap());
            c.auth.rate_limit.max_failures_per_account = 2;
            c.auth.rate_limit.max_failures_per_ip = 50;
            c.auth.rate_limit.window = HumanDuration::secs(600);
        },
        true,
    )
    .await
    else {
        return;
    };
    add_app(&app, "Wiki", "wiki.example.com").await;
    let (before, _) = scrape(&app).await;
    let sign_in = |outcome: &str| {
        format!("hallpass_sign_ins_total{{method=\"password\",outcome=\"{outcome}\"}}")
    };
    let hashes = "hallpass_password_hash_duration_seconds_count";

    // A good sign-in, two wrong passwords, then a refused attempt (the account + IP limit is 2).
    let admin = app.client();
    assert_eq!(login(&app, &admin, ADMIN, ADMIN_PASSWORD).await, 303);
    let stranger = app.client();
    let bad = login(&app, &stranger, "ghost-account", "wrong password 1").await;
    assert_eq!(
        login(&app, &stranger, "ghost-account", "wrong password 2").await,
        bad
    );
    assert_eq!(
        login(&app, &stranger, "ghost-account", "wrong password 3").await,
        429
    );
    // Forward-auth: an anonymous script is sent to sign in; the admin is let through.
    assert_eq!(forward_auth(&app, &stranger).await, 401);
    assert_eq!(forward_auth(&app, &admin).await, 200);
    // A page with an id in its path, to see that the label is the pattern.
    let admin_id = crate::support::user(&app, ADMIN).await.id;
    let r = admin
        .get(app.url(&format!("/admin/users/{admin_id}/edit")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (after, text) = scrape(&app).await;
    // Series of label sets not seen before (a route's first request) start at 0.
    let moved = |key: &str| get(&after, key) - before.get(key).copied().unwrap_or(0.0);
    assert_eq!(moved(&sign_in("success")), 1.0);
    assert_eq!(moved(&sign_in("wrong_credentials")), 2.0);
    assert_eq!(moved(&sign_in("rate_limited")), 1.0);
    assert_eq!(moved(&sign_in("second_step")), 0.0);
    assert_eq!(
        moved("hallpass_rate_limit_refusals_total{action=\"login\"}"),
        1.0
    );
    // Three hashes (the refused attempt computes none).
    assert_eq!(moved(hashes), 3.0);
    assert!(get(&after, "hallpass_password_hash_duration_seconds_sum") > 0.0);
    assert_eq!(
        moved("hallpass_forward_auth_decisions_total{decision=\"sign_in\"}"),
        1.0
    );
    assert_eq!(
        moved("hallpass_forward_auth_decisions_total{decision=\"allow\"}"),
        1.0
    );
    assert_eq!(
        moved("hallpass_forward_auth_decisions_total{decision=\"deny\"}"),
        0.0
    );
    assert_eq!(
        get(&after, "hallpass_sessions_active"),
        1.0,
        "the admin's session"
    );
    assert!(moved("hallpass_db_pool_wait_duration_seconds_count") > 0.0);
    assert_eq!(
        moved("hallpass_http_requests_total{method=\"POST\",route=\"/login\",status=\"303\"}"),
        1.0
    );
    assert_eq!(
        moved(&format!(
            "hallpass_http_requests_total{{method=\"POST\",route=\"/login\",status=\"{bad}\"}}"
        )),
        2.0
    );
    assert_eq!(
        get(
            &after,
            "hallpass_http_requests_total{method=\"GET\",route=\"/admin/users/{id}/edit\",status=\"200\"}"
        ),
        1.0
    );
    assert!(
        sum(
            &after,
            "hallpass_http_request_duration_seconds_count{method=\"POST\",route=\"/login\"}"
        ) >= 4.0
    );
    assert!(text.contains("hallpass_build_info{version=\""), "{text}");
    // No account, address or raw path is a label.
    for secret in [
        "ghost-account",
        "\"admin\"",
        "127.0.0.1",
        &format!("/admin/users/{admin_id}/edit"),
        "wiki.example.com",
        TOKEN,
    ] {
        assert!(!text.contains(secret), "{secret} in the scrape:\n{text}");
    }
}

async fn off_by_default_the_route_does_not_exist(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let metrics = c
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let unknown = c.get(app.url("/metricz")).send().await.unwrap();
    assert_eq!(metrics.status(), 404);
    assert_eq!(unknown.status(), 404);
    let (a, b) = (metrics.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(a, b, "the same page as any unknown path");
    assert!(!app.state.metrics.enabled());
}

async fn the_token_is_required_and_compared_exactly(db: Db) {
    let Some(app) = TestApp::start(db, with_token, true).await else {
        return;
    };
    let c = app.client();
    let bare = c.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"hallpass metrics\""
    );
    let body: serde_json::Value = bare.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METRICS_TOKEN_REQUIRED");
    for wrong in [
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        format!("Basic {TOKEN}"),
        TOKEN.to_owned(),
    ] {
        let r = c
            .get(app.url("/metrics"))
            .header("Authorization", &wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    // A signed-in admin's cookie opens nothing here.
    let admin = app.admin_client().await;
    let r = admin.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // From any address when no allow list is set.
    let r = client_from("127.0.0.2")
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn status(c: &reqwest::Client, app: &TestApp, token: Option<&str>, xff: Option<&str>) -> u16 {
    let mut req = c.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(x) = xff {
        req = req.header("X-Forwarded-For", x);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn the_allow_list_is_matched_against_the_resolved_client_address(db: Db) {
    // The allow list alone: 127.0.0.1 may scrape without a token, 127.0.0.2 may not.
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.metrics.enabled = true;
            c.metrics.allow = vec!["127.0.0.1/32".into()];
        },
        true,
    )
    .await
    else {
        return;
    };
    let (here, there) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    assert_eq!(status(&here, &app, None, None).await, 200);
    assert_eq!(status(&there, &app, None, None).await, 403);
    let r = there.get(app.url("/metrics")).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METRICS_ADDRESS_NOT_ALLOWED");
    // Without trusted proxies, X-Forwarded-For is not believed either way.
    assert_eq!(status(&here, &app, None, Some("10.9.9.9")).await, 200);
    assert_eq!(status(&there, &app, None, Some("127.0.0.1")).await, 403);
    let db = app.stop_keep_db().await;

    // Both: the address and the token. Behind a trusted proxy the client is the forwarded one.
    let app = TestApp::start_on(
        db,
        |c| {
            with_token(c);
            c.metrics.allow = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
            c.server.trusted_proxies =
                hallpass::config::TrustedProxies::List(vec!["127.0.0.2/32".parse().unwrap()]);
        },
        true,
    )
    .await;
    let (here, there) = (client_from("127.0.0.1"), client_from("127.0.0.2"));
    assert_eq!(status(&here, &app, Some(TOKEN), None).await, 200);
    assert_eq!(status(&here, &app, None, None).await, 401, "the token too");
    assert_eq!(status(&there, &app, Some(TOKEN), None).await, 403);
    assert_eq!(
        status(&there, &app, Some(TOKEN), Some("10.1.2.3")).await,
        200,
        "a client the trusted proxy forwards from an allowed network"
    );
    assert_eq!(
        status(&there, &app, Some(TOKEN), Some("192.168.1.9")).await,
        403
    );
}

async fn proxy_sign_ins_are_counted(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            with_token(c);
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["127.0.0.2".into()];
            c.auth.proxy.policy = "auto".into();
        },
        true,
    )
    .await
    else {
        return;
    };
    let (before, _) = scrape(&app).await;
    let proxy = client_from("127.0.0.2");
    let me = |who: &'static str| {
        proxy
            .get(app.url("/api/auth/me"))
            .header("Remote-User", who)
            .send()
    };
    assert_eq!(me("proxied-bob").await.unwrap().status(), 200);
    assert_eq!(me("proxied-bob").await.unwrap().status(), 200);
    // A header naming a local account is refused, never merged.
    assert_eq!(me(ADMIN).await.unwrap().status(), 401);
    let (after, text) = scrape(&app).await;
    let moved = |outcome: &str| {
        let key = format!("hallpass_sign_ins_total{{method=\"proxy\",outcome=\"{outcome}\"}}");
        get(&after, &key) - get(&before, &key)
    };
    assert_eq!(moved("success"), 2.0, "each proxied request is a sign-in");
    assert_eq!(moved("refused"), 1.0);
    assert!(
        !text.contains("proxied-bob") && !text.contains("127.0.0.2"),
        "{text}"
    );
}

/// `metrics.enabled` without a token or an allow list stops the binary (exit 2, naming both
/// keys); the token can come from a file and is never printed; a bad range is named.
/// Database tasks run since start-up (each one observes how long it waited for a thread).
fn db_tasks(m: &BTreeMap<String, f64>) -> f64 {
    get(m, "hallpass_db_pool_wait_duration_seconds_count")
}

/// Simultaneous requests of one caller in [`reads_for_a_burst_after_a_commit`].
const BURST: usize = 32;

/// `BURST` simultaneous requests from `c`, each made by `request`; the statuses.
async fn burst(c: &reqwest::Client, request: &Request<'_>) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let sent = request(c).send();
        set.spawn(async move { sent.await.unwrap().status().as_u16() });
    }
    set.join_all().await
}

/// Builds one request of a burst.
type Request<'a> = dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + 'a;

/// The database reads a burst of one caller's requests costs right after a commit that
/// every cache must see, while every database thread is busy for a moment (as on a loaded
/// server): the burst's requests all miss the cache before the first of them can read.
async fn reads_for_a_burst_after_a_commit(
    app: &TestApp,
    c: &reqwest::Client,
    request: &Request<'_>,
) -> f64 {
    // Opens the burst's connections and fills the caches.
    let warm = burst(c, request).await;
    assert!(warm.iter().all(|s| *s == 200), "{warm:?}");
    // Apps notify on PostgreSQL; on SQLite every commit moves the stamp.
    add_app(app, "Burst", "burst.example.com").await;
    // What one scrape costs in database tasks, measured, so that only the burst is counted.
    let (first, _) = scrape(app).await;
    let (before, _) = scrape(app).await;
    let per_scrape = db_tasks(&before) - db_tasks(&first);

    let threads = app.state.config.database.max_connections;
    let busy: Vec<_> = (0..threads)
        .map(|_| {
            let db = app.state.db.clone();
            tokio::spawn(async move {
                db.run(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(400));
                    Ok::<_, hallpass::db::DbError>(())
                })
                .await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let answers = burst(c, request).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    for b in busy {
        b.await.unwrap().unwrap();
    }
    let (after, _) = scrape(app).await;
    db_tasks(&after) - db_tasks(&before) - per_scrape - f64::from(threads)
}

/// After a commit that can narrow access, every cached session is read again at its next
/// request (on SQLite, after any commit at all). A burst of one session's requests that all
/// missed reads it once: the others wait for that read and are served what it cached,
/// instead of each taking a database thread (and starting more of them) for the same row.
async fn a_burst_after_a_commit_reads_the_session_once(db: Db) {
    let Some(app) = TestApp::start(db, with_token, true).await else {
        return;
    };
    let admin = app.client();
    assert_eq!(login(&app, &admin, ADMIN, ADMIN_PASSWORD).await, 303);
    let me = |c: &reqwest::Client| c.get(app.url("/api/auth/me"));
    let reads = reads_for_a_burst_after_a_commit(&app, &admin, &me).await;
    // One read (at most two more: the "last seen" batch, every 15 s, may write during the
    // burst and move the stamp again). A read per request would be 32.
    assert!(
        reads <= 3.0,
        "{reads} database tasks for a burst of {BURST} requests of one session"
    );
}

/// The same for the owner of an API key: one read for a burst of one key's requests.
async fn a_burst_after_a_commit_reads_the_api_key_once(db: Db) {
    let Some(app) = TestApp::start(db, with_token, true).await else {
        return;
    };
    let key = crate::support::new_api_key(&app, ADMIN, ADMIN_PASSWORD, "burst").await;
    let script = app.client();
    let me = |c: &reqwest::Client| c.get(app.url("/api/auth/me")).bearer_auth(&key);
    let reads = reads_for_a_burst_after_a_commit(&app, &script, &me).await;
    assert!(
        reads <= 3.0,
        "{reads} database tasks for a burst of {BURST} requests with one API key"
    );
}

/// The same for forward-auth, the check every asset of every guarded page makes: a burst of
/// one session's checks after a commit reads the rules, the session and its groups once.
async fn a_burst_of_forward_auth_checks_after_a_commit_reads_once(db: Db) {
    let Some(app) = TestApp::start(db, with_token, true).await else {
        return;
    };
    add_app(&app, "Wiki", "wiki.example.com").await;
    let admin = app.client();
    assert_eq!(login(&app, &admin, ADMIN, ADMIN_PASSWORD).await, 303);
    let check = |c: &reqwest::Client| wiki_check(&app, c, "/style.css");
    let reads = reads_for_a_burst_after_a_commit(&app, &admin, &check).await;
    // Three reads (the rules, the session, its groups); three more if the "last seen" batch
    // commits during the burst. A read of the rules and the groups per check would be 65.
    assert!(
        reads <= 7.0,
        "{reads} database tasks for a burst of {BURST} forward-auth checks of one session"
    );
}

/// The same with an API key (a script, or a proxy that passes `Authorization` on): the
/// rules, the key and its owner's groups are read once for the burst, not the groups once
/// per check (the key's owner comes from the key cache, its groups did not).
async fn a_burst_of_forward_auth_checks_with_an_api_key_reads_its_groups_once(db: Db) {
    let Some(app) = TestApp::start(db, with_token, true).await else {
        return;
    };
    add_app(&app, "Wiki", "wiki.example.com").await;
    let key = crate::support::new_api_key(&app, ADMIN, ADMIN_PASSWORD, "fa").await;
    let script = app.client();
    let check = |c: &reqwest::Client| wiki_check(&app, c, "/api/items").bearer_auth(&key);
    let reads = reads_for_a_burst_after_a_commit(&app, &script, &check).await;
    // Three reads (the rules, the key, its owner's groups); more if the "last seen" batch
    // or the key's "last used" commits during the burst. A read of the groups per check
    // would be 34.
    assert!(
        reads <= 7.0,
        "{reads} database tasks for a burst of {BURST} forward-auth checks with one API key"
    );
}

#[test]
fn the_binary_refuses_metrics_open_to_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let run = |vars: &[(&str, &str)]| {
        let mut c = crate::cli::hallpass(dir.path());
        c.arg("check-config");
        for (k, v) in vars {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[("HALLPASS_METRICS__ENABLED", "true")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics.token") && err.contains("metrics.allow"),
        "{err}"
    );
    let out = run(&[
        ("HALLPASS_METRICS__ENABLED", "true"),
        ("HALLPASS_METRICS__ALLOW", "[10.0.0.0/33]"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics.allow"));
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let out = run(&[
        ("HALLPASS_METRICS__ENABLED", "true"),
        ("HALLPASS_METRICS__TOKEN_FILE", token.to_str().unwrap()),
        ("HALLPASS_METRICS__ALLOW", "[127.0.0.1, 10.0.0.0/8]"),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("[metrics]") && stdout.contains("10.0.0.0/8"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}{stderr}"
    );
}
