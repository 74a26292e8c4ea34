//! Brute-force limits shared by every process on PostgreSQL (issue 12, point 3): two
//! servers on one database count against one limit, concurrent failures are all counted,
//! a restart forgets nothing, and a block that begins on one server reaches the other
//! without that one seeing a failure itself. (SQLite keeps them per process, in memory.)

use std::time::{Duration, Instant};

use hallpass::config::{Config, HumanDuration};
use serde_json::json;

use crate::support::process::beside;
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, client_from, sql};

fn limits(account: u32, ip: u32) -> impl Fn(&mut Config) + Clone {
    move |c: &mut Config| {
        let r = &mut c.auth.rate_limit;
        r.max_failures_per_account = account;
        r.max_failures_per_ip = ip;
        r.window = HumanDuration::secs(900);
    }
}

async fn two(account: u32, ip: u32) -> Option<(TestApp, TestApp)> {
    let a = TestApp::start(Db::Postgres, limits(account, ip), true).await?;
    let b = beside(&a, limits(account, ip)).await;
    Some((a, b))
}

async fn login(app: &TestApp, c: &reqwest::Client, password: &str) -> u16 {
    c.post(app.url("/api/auth/login"))
        .json(&json!({ "username": ADMIN, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_split_over_two_servers_reach_one_limit_and_survive_a_restart() {
    let Some((a, b)) = two(4, 100).await else {
        return;
    };
    let c = client_from("127.0.0.1");
    for app in [&a, &b, &a, &b] {
        assert_eq!(login(app, &c, "wrong").await, 401);
    }
    // Four failures, two on each: both refuse now, even the right password.
    assert_eq!(login(&a, &c, ADMIN_PASSWORD).await, 429);
    assert_eq!(login(&b, &c, ADMIN_PASSWORD).await, 429);
    // A server started afterwards knows too.
    let b2 = beside(&a, limits(4, 100)).await;
    assert_eq!(login(&b2, &c, ADMIN_PASSWORD).await, 429);
    drop(b);
    // Another address is not concerned.
    assert_eq!(
        login(&b2, &client_from("127.0.0.2"), ADMIN_PASSWORD).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_on_two_servers_are_all_counted() {
    const EACH: usize = 12;
    let Some((a, b)) = two(1000, 1000).await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..2 * EACH {
        let url = if i % 2 == 0 {
            a.url("/api/auth/login")
        } else {
            b.url("/api/auth/login")
        };
        tasks.push(tokio::spawn(async move {
            client_from("127.0.0.1")
                .post(url)
                .json(&json!({ "username": "nobody", "password": "wrong" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    // The address's counter and the account's: every failure, none lost to a race.
    let exact = sql(
        &a,
        format!(
            "SELECT 1 FROM rate_limits WHERE action = 'login' AND failures = {}",
            2 * EACH
        ),
    )
    .await;
    assert_eq!(exact, 2, "both counters hold all {} failures", 2 * EACH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_block_begun_on_one_server_reaches_the_other_without_a_failure_there() {
    let Some((a, b)) = two(100, 3).await else {
        return;
    };
    let (c, csrf) = api_login(&a, ADMIN, ADMIN_PASSWORD).await;
    let created: serde_json::Value = c
        .post(a.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "name": "ci", "expires_in_days": 30 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let me = |app: &TestApp, key: &str| {
        client_from("127.0.0.1")
            .get(app.url("/api/auth/me"))
            .bearer_auth(key.to_owned())
            .send()
    };
    assert_eq!(me(&b, &key).await.unwrap().status(), 200);
    let bad = format!("hp_{}", "A".repeat(43));
    for _ in 0..3 {
        assert_eq!(me(&a, &bad).await.unwrap().status(), 401);
    }
    assert_eq!(
        me(&a, &key).await.unwrap().status(),
        429,
        "the address is blocked"
    );
    // B saw no failure; the block reaches it through the database's notification.
    let start = Instant::now();
    loop {
        let status = me(&b, &key).await.unwrap().status();
        if status == 429 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B never learned of the block"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counted = sql(
        &a,
        "SELECT 1 FROM rate_limits WHERE action = 'api_key' AND failures = 3",
    )
    .await;
    assert_eq!(counted, 1, "B's refusals counted no failure");
}
