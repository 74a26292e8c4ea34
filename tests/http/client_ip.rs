//! `server.trusted_proxies`: which address the audit log (and the rate limits) see behind a
//! reverse proxy. 127.0.0.1 plays the proxy, 127.0.0.2 a machine that reaches Hallpass
//! directly.

use std::process::Command;

use hallpass::config::TrustedProxies;

use crate::support::{Db, TestApp, audit_events, client_from};

both_databases!(
    forwarded_for_from_an_untrusted_peer_is_ignored,
    a_trusted_peer_gives_the_right_most_untrusted_hop,
    a_hop_count_trusts_that_many_proxies,
    true_trusts_every_hop,
    a_dual_stack_listener_trusts_an_ipv4_proxy_for_both_lists,
);

/// A failed JSON sign-in from `from` carrying `X-Forwarded-For: xff`; returns the address the
/// audit log recorded for it.
async fn audited_ip(app: &TestApp, from: &str, xff: Option<&str>) -> String {
    let mut req = client_from(from)
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "username": "nobody", "password": "wrong password" }));
    if let Some(xff) = xff {
        req = req.header("X-Forwarded-For", xff);
    }
    assert_eq!(req.send().await.unwrap().status(), 401);
    let events = audit_events(app, "login.password").await;
    events[0].ip.clone().unwrap()
}

async fn app_trusting(db: Db, trust: &str) -> Option<TestApp> {
    let trust: TrustedProxies = trust.parse().unwrap();
    TestApp::start(db, |c| c.server.trusted_proxies = trust, true).await
}

/// Issue 9, point 7: on `[::]` the kernel hands Hallpass an IPv4 proxy as
/// `::ffff:127.0.0.1`. Both trusted lists must recognise it as `127.0.0.1`: the proxy's
/// `Remote-User` signs in, and its `X-Forwarded-For` names the client in the audit log;
/// 127.0.0.2, trusted by neither list, gets neither.
async fn a_dual_stack_listener_trusts_an_ipv4_proxy_for_both_lists(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.server.bind = "[::]:0".parse().unwrap();
            c.server.trusted_proxies = "127.0.0.1".parse().unwrap();
            c.auth.proxy.enabled = true;
            c.auth.proxy.policy = "auto".into();
            c.auth.proxy.trusted_proxies = vec!["127.0.0.1".into()];
        },
        true,
    )
    .await
    else {
        return;
    };
    assert!(app.addr.is_ipv6(), "listening on {}", app.addr);
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", app.addr.port());
    let me = |from: &str| {
        client_from(from)
            .get(url("/api/auth/me"))
            .header("Remote-User", "carol")
            .send()
    };
    let r = me("127.0.0.1").await.unwrap();
    assert_eq!(r.status(), 200, "the trusted IPv4 proxy signs carol in");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["username"], "carol", "{body}");
    assert_eq!(me("127.0.0.2").await.unwrap().status(), 401);
    // server.trusted_proxies on the same socket: the forwarded client is audited.
    let r = client_from("127.0.0.1")
        .post(url("/api/auth/login"))
        .header("X-Forwarded-For", "203.0.113.9")
        .json(&serde_json::json!({ "username": "nobody", "password": "wrong password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let events = audit_events(&app, "login.password").await;
    assert_eq!(events[0].ip.as_deref(), Some("203.0.113.9"));
}

async fn forwarded_for_from_an_untrusted_peer_is_ignored(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    assert_eq!(
        audited_ip(&app, "127.0.0.1", Some("203.0.113.9")).await,
        "127.0.0.1"
    );
    assert_eq!(
        audited_ip(&app, "127.0.0.2", Some("203.0.113.9")).await,
        "127.0.0.2"
    );
    // Trusting someone else does not make this peer trusted.
    let Some(app) = app_trusting(db, "10.0.0.5, 172.18.0.0/16").await else {
        return;
    };
    assert_eq!(
        audited_ip(&app, "127.0.0.1", Some("203.0.113.9")).await,
        "127.0.0.1"
    );
}

async fn a_trusted_peer_gives_the_right_most_untrusted_hop(db: Db) {
    let Some(app) = app_trusting(db, "[127.0.0.1, 10.0.0.0/8]").await else {
        return;
    };
    // The client claimed 6.6.6.6; the proxy appended what it saw.
    let chain = "6.6.6.6, 203.0.113.9";
    assert_eq!(
        audited_ip(&app, "127.0.0.1", Some(chain)).await,
        "203.0.113.9"
    );
    // A trusted inner proxy is skipped too.
    let chain = "6.6.6.6, 203.0.113.9, 10.1.2.3";
    assert_eq!(
        audited_ip(&app, "127.0.0.1", Some(chain)).await,
        "203.0.113.9"
    );
    // No header: the proxy itself.
    assert_eq!(audited_ip(&app, "127.0.0.1", None).await, "127.0.0.1");
    // The same header from an address that is not a proxy is not believed.
    assert_eq!(
        audited_ip(&app, "127.0.0.2", Some(chain)).await,
        "127.0.0.2"
    );
}

async fn a_hop_count_trusts_that_many_proxies(db: Db) {
    let Some(app) = app_trusting(db, "2").await else {
        return;
    };
    let chain = "6.6.6.6, 203.0.113.9, 10.1.2.3";
    assert_eq!(
        audited_ip(&app, "127.0.0.1", Some(chain)).await,
        "203.0.113.9"
    );
    // Positions, not addresses: any peer counts as the first proxy.
    assert_eq!(
        audited_ip(&app, "127.0.0.2", Some(chain)).await,
        "203.0.113.9"
    );
    // Fewer entries than hops: the furthest one known.
    assert_eq!(
        audited_ip(&app, "127.0.0.2", Some("203.0.113.7")).await,
        "203.0.113.7"
    );
}

async fn true_trusts_every_hop(db: Db) {
    let Some(app) = app_trusting(db, "true").await else {
        return;
    };
    let chain = "6.6.6.6, 203.0.113.9, 10.1.2.3";
    assert_eq!(audited_ip(&app, "127.0.0.2", Some(chain)).await, "6.6.6.6");
}

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// `hallpass check-config` with only `HALLPASS_SERVER__TRUSTED_PROXIES` set.
fn check_config(value: &str) -> (Option<i32>, String, String) {
    check_config_with(&[("HALLPASS_SERVER__TRUSTED_PROXIES", value)])
}

/// `hallpass check-config` with only these variables set.
fn check_config_with(vars: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .envs(vars.iter().copied())
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_form_of_the_key_loads_from_the_environment() {
    let (code, out, err) = check_config("true");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("trusted_proxies = true"), "{out}");
    let (code, out, err) = check_config("2");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("trusted_proxies = 2"), "{out}");
    let (code, out, err) = check_config("[10.0.0.5, 172.18.0.0/16]");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("\"10.0.0.5\"") && out.contains("\"172.18.0.0/16\""),
        "{out}"
    );
    for bad in ["-1", "yes please", "[10.0.0.5, 10.0.0.0/33]"] {
        let (code, _, err) = check_config(bad);
        assert_eq!(code, Some(2), "{bad}");
        assert!(err.contains("server.trusted_proxies"), "{bad}: {err}");
    }
}

/// Issue 9, point 7: a trusted list that reaches the whole address space, or public
/// addresses at all, stops the server (exit 2, the key named) unless
/// `server.allow_public_trust` says it is meant.
#[test]
fn trusting_public_or_all_addresses_is_refused_at_start_up() {
    for key in [
        "HALLPASS_SERVER__TRUSTED_PROXIES",
        "HALLPASS_AUTH__PROXY__TRUSTED_PROXIES",
    ] {
        let name = key
            .trim_start_matches("HALLPASS_")
            .replace("__", ".")
            .to_lowercase();
        for list in [
            "[0.0.0.0/1, 128.0.0.0/1]",
            "[::/1]",
            "[10.0.0.5, 198.51.100.0/24]",
        ] {
            let (code, _, err) = check_config_with(&[(key, list)]);
            assert_eq!(code, Some(2), "{key}={list}");
            assert!(err.contains(&name), "{key}={list}: {err}");
        }
        let (code, _, err) = check_config_with(&[(key, "[10.0.0.0/8, 192.168.0.0/16]")]);
        assert_eq!(code, Some(0), "{key}: {err}");
        let (code, out, err) = check_config_with(&[
            (key, "[198.51.100.0/24]"),
            ("HALLPASS_SERVER__ALLOW_PUBLIC_TRUST", "true"),
        ]);
        assert_eq!(code, Some(0), "{key}: {err}");
        assert!(out.contains("allow_public_trust = true"), "{out}");
    }
    // Identities are never taken from everyone, opt-in or not.
    let (code, _, err) = check_config_with(&[
        (
            "HALLPASS_AUTH__PROXY__TRUSTED_PROXIES",
            "[0.0.0.0/1, 128.0.0.0/1]",
        ),
        ("HALLPASS_SERVER__ALLOW_PUBLIC_TRUST", "true"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("auth.proxy.trusted_proxies"), "{err}");
}
