//! Memory a burst of sign-ins leaves behind (issue 12, point 5): each password hash works in
//! a 19 MiB argon2 buffer, and once the burst is over none may stay resident.
//!
//! Real parts: a `hallpass serve` process (the built binary, with its global allocator) and
//! its `RssAnon` read from `/proc`; an in-process server would share the test harness's heap.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::json;

use crate::support::process::Node;
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestDb};

both_databases!(a_burst_of_sign_ins_leaves_no_hash_buffer_resident);

const MIB: u64 = 1024 * 1024;

/// The process's anonymous resident memory, in bytes.
fn rss_anon(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap();
    kib * 1024
}

/// `RssAnon` once it holds still (two readings 500 ms apart within 256 KiB).
async fn settled(node: &Node) -> u64 {
    let mut last = rss_anon(node);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = rss_anon(node);
        if now.abs_diff(last) < MIB / 4 {
            return now;
        }
        last = now;
    }
}

/// A sign-in with the wrong password at `url` (`/api/auth/login`): its status.
async fn wrong_sign_in(client: &Client, url: &str) -> u16 {
    client
        .post(url)
        .json(&json!({"username": ADMIN, "password": "not the password"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A correct sign-in, then `/api/auth/me` with its cookie, an API key made with it and
/// `/api/auth/me` with that key.
async fn signed_in_requests(node: &Node) {
    let (client, csrf) = node.sign_in(ADMIN, ADMIN_PASSWORD).await;
    for _ in 0..5 {
        let r = client.get(node.url("/api/auth/me")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client
        .post(node.url("/api/me/api-keys"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "memory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    let r = Client::new()
        .get(node.url("/api/auth/me"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn a_burst_of_sign_ins_leaves_no_hash_buffer_resident(db: Db) {
    let Some(db) = TestDb::new(db) else {
        return;
    };
    let node = Node::start(
        &db.url,
        db.data_dir(),
        &[
            ("HALLPASS_ADMIN_USERNAME", ADMIN),
            ("HALLPASS_ADMIN_PASSWORD", ADMIN_PASSWORD),
            // Every attempt is hashed (the limits would answer most with a cheap 429).
            ("HALLPASS_AUTH__RATE_LIMIT__ENABLED", "false"),
            ("HALLPASS_PASSWORD__MAX_CONCURRENT_HASHES", "2"),
        ],
    )
    .await;
    let client = Client::new();
    // One sign-in first, so that the code and the allocator's structures every sign-in
    // touches are part of the baseline; then wait for its buffer to go.
    let login = node.url("/api/auth/login");
    assert_eq!(wrong_sign_in(&client, &login).await, 401);
    let baseline = settled(&node).await;

    // Twelve at once on two hashing threads: a burst that queues.
    let burst: Vec<_> = (0..12)
        .map(|_| {
            let (client, login) = (client.clone(), login.clone());
            tokio::spawn(async move { wrong_sign_in(&client, &login).await })
        })
        .collect();
    let mut peak = 0;
    while !burst.iter().all(|t| t.is_finished()) {
        peak = peak.max(rss_anon(&node));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in burst {
        assert_eq!(t.await.unwrap(), 401);
    }
    // The measurement can see a buffer: during the burst at least one was resident.
    assert!(
        peak >= baseline + 18 * MIB,
        "peak {} MiB against a baseline of {} MiB: no 19 MiB buffer was ever seen",
        peak / MIB,
        baseline / MIB
    );

    // Then a correct sign-in and, at once, what a signed-in client does next (the requests
    // bench/run.sh makes). Those run the allocator on other threads (on PostgreSQL the
    // database and listener threads) while the sign-in's buffer is being given back, and
    // with the buffer in mimalloc's arena that could keep it resident.
    signed_in_requests(&node).await;

    // Every buffer goes back to the system, without any further request to make the
    // allocator look at it again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut now = rss_anon(&node);
    while now > baseline + 8 * MIB && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = rss_anon(&node);
    }
    assert!(
        now <= baseline + 8 * MIB,
        "{} MiB resident 5 s after the burst against {} MiB before it: a hash buffer stayed \
         ({})",
        now / MIB,
        baseline / MIB,
        node.log()
    );
}
