//! Wrong `/metrics` bearer tokens count against the brute-force limits, as an action of their
//! own (`metrics_token`): past the limit the scrape answers 429 with `Retry-After` before the
//! token is compared (the right one is refused too), API keys and sign-in from the same
//! address are not touched (nor the other way round), refusals are audited and listed on the
//! lockout view, and on PostgreSQL two servers share the count. Before this, a wrong token
//! was answered 401 as often as anyone liked.

use reqwest::Client;
use serde_json::{Value, json};

use hallpass::config::{Config, HumanDuration, MetricsToken};

use crate::support::process::beside;
use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, audit_events, client_from, new_api_key,
};

both_databases!(
    wrong_metrics_tokens_are_limited_on_their_own,
    a_metrics_token_lockout_is_listed_audited_and_lifted,
);

const TOKEN: &str = "scrape-token-0123456789abcdef";
const WINDOW: u64 = 900;

/// A token, and 3 failures per address (and per account) in 15 minutes.
fn limits(c: &mut Config) {
    c.metrics.enabled = true;
    c.metrics.token = Some(MetricsToken::new(TOKEN.into()));
    let r = &mut c.auth.rate_limit;
    r.max_failures_per_account = 3;
    r.max_failures_per_ip = 3;
    r.window = HumanDuration::secs(WINDOW);
}

/// A scrape from `c` sending `authorization` (none: no header at all).
async fn scrape(app: &TestApp, c: &Client, authorization: Option<&str>) -> reqwest::Response {
    let mut req = c.get(app.url("/metrics"));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    req.send().await.unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Checks the JSON 429 the API gives every rate-limited request.
async fn assert_limited(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=WINDOW).contains(&wait), "Retry-After {wait}");
    assert!(r.headers().get("www-authenticate").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Too many failed attempts."),
        "{message}"
    );
}

/// `n` wrong tokens from `c`, each answered 401 as before.
async fn fail(app: &TestApp, c: &Client, n: usize) {
    for i in 0..n {
        let r = scrape(app, c, Some(&bearer(&format!("guess-{i}")))).await;
        assert_eq!(r.status(), 401, "guess {i}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"hallpass metrics\""
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "METRICS_TOKEN_REQUIRED");
    }
}

async fn me_with_key(app: &TestApp, c: &Client, key: &str) -> u16 {
    let r = c.get(app.url("/api/auth/me")).bearer_auth(key).send().await;
    r.unwrap().status().as_u16()
}

async fn password_login(app: &TestApp, c: &Client) -> u16 {
    c.post(app.url("/api/auth/login"))
        .json(&json!({ "username": ADMIN, "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn wrong_metrics_tokens_are_limited_on_their_own(db: Db) {
    let Some(app) = TestApp::start(db, limits, true).await else {
        return;
    };
    let key = new_api_key(&app, ADMIN, ADMIN_PASSWORD, "scraper host").await;
    let scraper = client_from("127.0.0.3");
    // No Authorization header at all guesses nothing: refused, never counted.
    for _ in 0..5 {
        assert_eq!(scrape(&app, &scraper, None).await.status(), 401);
    }
    assert_eq!(
        scrape(&app, &scraper, Some(&bearer(TOKEN))).await.status(),
        200
    );
    fail(&app, &scraper, 3).await;
    assert_limited(scrape(&app, &scraper, Some(&bearer("guess-3"))).await).await;
    // The token is not even compared now: the right one is refused the same way.
    assert_limited(scrape(&app, &scraper, Some(&bearer(TOKEN))).await).await;
    // The scraper's host still uses its API key and signs in: other counters.
    assert_eq!(me_with_key(&app, &scraper, &key).await, 200);
    assert_eq!(password_login(&app, &scraper).await, 200);
    // Another address scrapes as before.
    let other = client_from("127.0.0.4");
    assert_eq!(
        scrape(&app, &other, Some(&bearer(TOKEN))).await.status(),
        200
    );
    // The other way round: bad API keys that lock 127.0.0.4 out of keys leave its scrape be.
    let bad_key = format!("hp_{}", "A".repeat(43));
    for _ in 0..3 {
        assert_eq!(me_with_key(&app, &other, &bad_key).await, 401);
    }
    assert_eq!(me_with_key(&app, &other, &key).await, 429, "keys limited");
    let r = scrape(&app, &other, Some(&bearer(TOKEN))).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("hallpass_rate_limit_refusals_total{action=\"metrics_token\"} 2"),
        "{text}"
    );
}

async fn a_metrics_token_lockout_is_listed_audited_and_lifted(db: Db) {
    let Some(app) = TestApp::start(db, limits, true).await else {
        return;
    };
    let scraper = client_from("127.0.0.3");
    fail(&app, &scraper, 3).await;
    assert_limited(scrape(&app, &scraper, Some(&bearer(TOKEN))).await).await;
    let refused = audit_events(&app, "rate_limit.metrics_token").await;
    assert_eq!(refused.len(), 1, "the first refusal at once: {refused:?}");
    assert_eq!(refused[0].outcome, "refused");
    assert_eq!(refused[0].ip.as_deref(), Some("127.0.0.3"));

    let (admin, csrf) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let listed: Value = admin
        .get(app.url("/api/admin/lockouts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed["lockouts"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["action"], "metrics_token");
    assert_eq!(listed[0]["scope"], "address");
    assert_eq!(listed[0]["client"], "127.0.0.3");
    assert_eq!(listed[0]["failures"], 3);
    let id = listed[0]["id"].as_str().unwrap();
    let r = admin
        .delete(app.url(&format!("/api/admin/lockouts/{id}")))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        scrape(&app, &scraper, Some(&bearer(TOKEN))).await.status(),
        200,
        "lifted"
    );
    let lifted = audit_events(&app, "rate_limit.lift").await;
    assert_eq!(lifted[0].target.as_deref(), Some("127.0.0.3"));
    assert!(
        lifted[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("action=metrics_token"),
        "{lifted:?}"
    );
}

/// PostgreSQL: wrong tokens sent to one server count on the other (one database, one
/// limit), so a scraper cannot multiply its guesses by the number of servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_metrics_token_count() {
    let Some(a) = TestApp::start(Db::Postgres, limits, true).await else {
        return;
    };
    let b = beside(&a, limits).await;
    let scraper = client_from("127.0.0.3");
    fail(&a, &scraper, 2).await;
    fail(&b, &scraper, 1).await;
    // B counted the third failure in the shared counters and refuses at once.
    assert_limited(scrape(&b, &scraper, Some(&bearer(TOKEN))).await).await;
    // A, which saw two, learns of the block when its notification arrives (a token check
    // reads no counters, like an API key: allow a moment). Right tokens meanwhile are
    // answered and clear nothing; they never reach a limit on their own.
    let start = std::time::Instant::now();
    loop {
        let r = scrape(&a, &scraper, Some(&bearer(TOKEN))).await;
        if r.status() == 429 {
            assert_limited(r).await;
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "A never learnt of B's failure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
