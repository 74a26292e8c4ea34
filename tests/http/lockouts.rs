//! The lockout view (issue 14, point 5): counters at or past their limit are listed with the
//! account, the client address, the failures and when the window ends; "lift" (audited)
//! lets the next attempt through. SQLite keeps counters per process; on PostgreSQL they are
//! shared, and a lift made through one server reaches the other.

use reqwest::Client;
use serde_json::{Value, json};

use hallpass::config::{Config, HumanDuration};

use crate::support::process::beside;
use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, audit_events, client_from,
};

both_databases!(
    lockouts_are_listed_and_lifted_on_the_page_and_through_the_api,
    an_address_lockout_is_listed_without_an_account,
    a_second_factor_lockout_is_listed_and_lifted
);

/// 3 failures per account and address, 6 per address; both in 15 minutes.
fn limits(c: &mut Config) {
    let r = &mut c.auth.rate_limit;
    r.max_failures_per_account = 3;
    r.max_failures_per_ip = 6;
    r.window = HumanDuration::secs(900);
}

/// As [`limits`], with room for more failures per address.
fn account_limits(c: &mut Config) {
    limits(c);
    c.auth.rate_limit.max_failures_per_ip = 50;
}

async fn login(app: &TestApp, c: &Client, name: &str, password: &str) -> u16 {
    c.post(app.url("/api/auth/login"))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin(app: &TestApp) -> (Client, String) {
    crate::support::api_login(app, ADMIN, ADMIN_PASSWORD).await
}

async fn lockouts(app: &TestApp, admin: &Client) -> Vec<Value> {
    let r = admin
        .get(app.url("/api/admin/lockouts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["lockouts"].as_array().unwrap().clone()
}

async fn lockouts_are_listed_and_lifted_on_the_page_and_through_the_api(db: Db) {
    let Some(app) = TestApp::start(db, account_limits, true).await else {
        return;
    };
    add_user(&app, "ann", "user").await;
    let (admin, token) = admin(&app).await;
    let attacker = client_from("127.0.0.2");
    assert!(lockouts(&app, &admin).await.is_empty());
    for _ in 0..2 {
        assert_eq!(login(&app, &attacker, "Ann", "wrong").await, 401);
    }
    assert!(lockouts(&app, &admin).await.is_empty(), "below the limit");
    assert_eq!(login(&app, &attacker, "ann", "wrong").await, 401);
    assert_eq!(
        login(&app, &attacker, "ann", MEMBER_PASSWORD).await,
        429,
        "locked out"
    );

    let listed = lockouts(&app, &admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let l = &listed[0];
    assert_eq!(l["account"], "ann");
    assert_eq!(l["scope"], "account");
    assert_eq!(l["client"], "127.0.0.2");
    assert_eq!(l["action"], "login");
    assert_eq!(
        (l["failures"].as_u64(), l["limit"].as_u64()),
        (Some(3), Some(3))
    );
    let ends = l["ends_at"].as_str().unwrap();
    let ends =
        time::OffsetDateTime::parse(ends, &time::format_description::well_known::Rfc3339).unwrap();
    let left = ends - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::seconds(800) && left <= time::Duration::seconds(901),
        "the window ends in about 15 minutes: {left}"
    );
    let id = l["id"].as_str().unwrap().to_owned();

    // The page shows it; "Lift" lets the right password through at once.
    let page_client = app.admin_client().await;
    let html = page_client
        .get(app.url("/admin/lockouts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("127.0.0.2") && html.contains(">ann<"),
        "{html}"
    );
    assert!(html.contains(&format!("id=\"lift-{id}\"")));
    let page_token = app.csrf(&page_client, "/admin/lockouts").await;
    let r = page_client
        .post(app.url(&format!("/admin/lockouts/{id}/lift")))
        .form(&[("csrf_token", page_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers().get("location").unwrap(),
        "/admin/lockouts?notice=lifted"
    );
    let lifted = audit_events(&app, "rate_limit.lift").await;
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].target.as_deref(), Some("ann"));
    assert_eq!(lifted[0].actor, ADMIN);
    assert!(lockouts(&app, &admin).await.is_empty());
    assert_eq!(
        login(&app, &attacker, "ann", MEMBER_PASSWORD).await,
        200,
        "lifted"
    );

    // Lifting again, or a made-up id: 404 with a message, in both front ends.
    for bad in [id.as_str(), "zz", "6c6f67696e0a310a"] {
        let r = admin
            .delete(app.url(&format!("/api/admin/lockouts/{bad}")))
            .header("X-CSRF-Token", &token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
    let r = page_client
        .post(app.url(&format!("/admin/lockouts/{id}/lift")))
        .form(&[("csrf_token", page_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The JSON lift.
    for _ in 0..3 {
        login(&app, &attacker, "ann", "wrong").await;
    }
    let listed = lockouts(&app, &admin).await;
    let id = listed[0]["id"].as_str().unwrap();
    let r = admin
        .delete(app.url(&format!("/api/admin/lockouts/{id}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["account"], "ann");
    assert_eq!(login(&app, &attacker, "ann", MEMBER_PASSWORD).await, 200);
}

async fn an_address_lockout_is_listed_without_an_account(db: Db) {
    let Some(app) = TestApp::start(db, limits, true).await else {
        return;
    };
    let (admin, token) = admin(&app).await;
    let attacker = client_from("127.0.0.3");
    for i in 0..6 {
        assert_eq!(login(&app, &attacker, &format!("guess{i}"), "x").await, 401);
    }
    assert_eq!(login(&app, &attacker, "another", "x").await, 429);
    let listed = lockouts(&app, &admin).await;
    let by_address: Vec<&Value> = listed.iter().filter(|l| l["scope"] == "address").collect();
    assert_eq!(by_address.len(), 1, "{listed:?}");
    assert_eq!(by_address[0]["client"], "127.0.0.3");
    assert!(by_address[0]["account"].is_null());
    assert_eq!(by_address[0]["failures"], 6);
    let id = by_address[0]["id"].as_str().unwrap();
    let r = admin
        .delete(app.url(&format!("/api/admin/lockouts/{id}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        login(&app, &attacker, "another", "x").await,
        401,
        "counted again, not refused"
    );
    let lifted = audit_events(&app, "rate_limit.lift").await;
    assert_eq!(lifted[0].target.as_deref(), Some("127.0.0.3"));
}

/// PostgreSQL: two servers share the counters. A lockout reached through A refuses on B
/// too (B has taken the failures into its own memory); lifted through A, B lets the next
/// attempt through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lift_through_one_server_reaches_the_other() {
    let Some(a) = TestApp::start(Db::Postgres, limits, true).await else {
        return;
    };
    let b = beside(&a, limits).await;
    add_user(&a, "ann", "user").await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(login(&a, &attacker, "ann", "wrong").await, 401);
    }
    assert_eq!(
        login(&b, &attacker, "ann", MEMBER_PASSWORD).await,
        429,
        "shared"
    );
    let (admin, token) = admin(&a).await;
    let listed = lockouts(&b, &admin).await;
    assert_eq!(listed.len(), 1, "B lists what A counted: {listed:?}");
    let id = listed[0]["id"].as_str().unwrap();
    let r = admin
        .delete(app_url(&a, id))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The lift reaches B through the limits channel (read without a fence: allow a moment).
    let start = std::time::Instant::now();
    loop {
        let status = login(&b, &attacker, "ann", MEMBER_PASSWORD).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "B still refuses after the lift"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn app_url(app: &TestApp, id: &str) -> String {
    app.url(&format!("/api/admin/lockouts/{id}"))
}

/// Wrong second-factor codes lock the account's second step (its own counters); the lockout
/// is listed with its action and can be lifted like any other (it could not: its action's
/// name was unknown to the lockout ids).
async fn a_second_factor_lockout_is_listed_and_lifted(db: Db) {
    use crate::two_factor::{code_at, now};
    let Some(app) = TestApp::start(db, account_limits, true).await else {
        return;
    };
    add_user(&app, "ann", "user").await;
    let ann = crate::support::user(&app, "ann").await;
    let (db_, secret) = (&app.state.db, &app.state.secret);
    let started = hallpass::service::two_factor::start(db_, secret, &ann)
        .await
        .unwrap();
    let actor = hallpass::service::Actor::system("test");
    let code = code_at(&started.secret, now());
    hallpass::service::two_factor::confirm(db_, secret, actor, &ann, &code)
        .await
        .unwrap();
    let (admin, token) = admin(&app).await;

    // Password right, then wrong codes until the step is locked.
    let c = client_from("127.0.0.2");
    assert_eq!(login(&app, &c, "ann", MEMBER_PASSWORD).await, 202);
    let second = |code: &'static str| {
        c.post(app.url("/api/auth/login/second-factor"))
            .json(&json!({ "code": code }))
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(second("000000").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429], "locked after 3");

    let listed = lockouts(&app, &admin).await;
    let l = listed
        .iter()
        .find(|l| l["action"] == "second_factor")
        .unwrap_or_else(|| panic!("the second-factor lockout is listed: {listed:?}"));
    assert_eq!(l["account"], "ann");
    let id = l["id"].as_str().unwrap();
    let r = admin
        .delete(app.url(&format!("/api/admin/lockouts/{id}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "lifted");
    assert!(
        !lockouts(&app, &admin)
            .await
            .iter()
            .any(|l| l["action"] == "second_factor")
    );
    // The next code is judged again (wrong: 401, not 429).
    assert_eq!(second("000000").await.unwrap().status(), 401);
}
