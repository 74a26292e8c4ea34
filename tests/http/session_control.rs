//! "Your sessions" (issue 14, point 4): every signed-in session listed with its sign-in
//! time, last seen, client address and a readable device, the caller's own marked; ending
//! one, or all but one, takes effect at that session's next request — with its cache warm,
//! and in every process on the database. Admins do the same for any account.

use reqwest::Client;
use serde_json::Value;

use crate::support::process::beside;
use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, audit_events, client_from,
};

both_databases!(
    your_sessions_are_listed_marked_and_ended_at_their_next_request,
    admins_see_and_end_any_accounts_sessions,
    an_ended_session_is_refused_by_every_process_at_its_next_request
);

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// A browser-like client (cookies, no redirects) sending `user_agent`, from `local`.
fn browser(user_agent: &str, local: &str) -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Signs `name` in through the sign-in form with `c`.
async fn sign_in(app: &TestApp, c: &Client, name: &str, password: &str) {
    assert_eq!(
        app.login(c, name, password).await.status(),
        303,
        "{name} signs in"
    );
}

/// `GET /api/auth/me` three times (the first fills the session cache); the last status.
async fn warm(app: &TestApp, c: &Client) -> u16 {
    let mut last = 0;
    for _ in 0..3 {
        last = me(app, c).await;
    }
    last
}

async fn me(app: &TestApp, c: &Client) -> u16 {
    c.get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn json(app: &TestApp, c: &Client, path: &str) -> Value {
    let r = c.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

/// Posts a page's form (`csrf_token` from `page`) and returns the status and `Location`.
async fn post_form(app: &TestApp, c: &Client, page: &str, action: &str) -> (u16, String) {
    let token = app.csrf(c, page).await;
    let r = c
        .post(app.url(action))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (r.status().as_u16(), to)
}

async fn your_sessions_are_listed_marked_and_ended_at_their_next_request(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    add_user(&app, "ann", "user").await;
    add_user(&app, "bob", "user").await;
    let laptop = browser(FIREFOX, "127.0.0.1");
    let phone = browser(IPHONE, "127.0.0.2");
    sign_in(&app, &laptop, "ann", MEMBER_PASSWORD).await;
    sign_in(&app, &phone, "ann", MEMBER_PASSWORD).await;
    assert_eq!(warm(&app, &phone).await, 200);

    // The JSON list: both sessions, the caller's marked, each with its own client details.
    let list = json(&app, &laptop, "/api/me/sessions").await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let mine: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1, "exactly one is the caller's: {list}");
    assert_eq!(mine[0]["device"], "Firefox on Linux");
    assert_eq!(mine[0]["ip"], "127.0.0.1");
    assert_eq!(mine[0]["user_agent"], FIREFOX);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["device"], "Safari on iPhone");
    assert_eq!(other["ip"], "127.0.0.2");
    for s in sessions {
        assert!(s["signed_in_at"].as_str().unwrap().starts_with("20"), "{s}");
        assert!(s["last_seen_at"].is_string(), "{s}");
    }
    let phone_id = other["id"].as_str().unwrap().to_owned();
    // The session data each request loads carries no client details: they are columns.
    assert!(
        crate::support::session_rows(&app)
            .await
            .iter()
            .all(|d| !d.contains("Firefox") && !d.contains("127.0.0.2")),
    );

    // The page: the same, readable, the current one marked and not offered an "End".
    let html = laptop
        .get(app.url("/account/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Firefox on Linux") && html.contains("Safari on iPhone"));
    assert!(html.contains("id=\"current-session\""), "{html}");
    assert!(html.contains(&format!("id=\"end-{phone_id}\"")));
    let my_id = mine[0]["id"].as_str().unwrap();
    assert!(
        !html.contains(&format!("id=\"end-{my_id}\"")),
        "no End for this session"
    );

    // Ending the phone's session (its cache warm): refused at its very next request.
    let (status, to) = post_form(
        &app,
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
    )
    .await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/account/sessions?notice=ended")
    );
    assert_eq!(me(&app, &phone).await, 401, "ended");
    assert_eq!(me(&app, &laptop).await, 200, "the caller's own stays");
    let ended = audit_events(&app, "session.end").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].target.as_deref(), Some("ann"));
    // Again: it is gone (a 404 page, not a 500).
    let (status, _) = post_form(
        &app,
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
    )
    .await;
    assert_eq!(status, 404);

    // Someone else's session cannot be ended from your list.
    let bobs = browser(FIREFOX, "127.0.0.3");
    sign_in(&app, &bobs, "bob", MEMBER_PASSWORD).await;
    assert_eq!(warm(&app, &bobs).await, 200);
    let bob_id = json(&app, &bobs, "/api/me/sessions").await["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = app.csrf(&laptop, "/account/sessions").await;
    let r = laptop
        .delete(app.url(&format!("/api/me/sessions/{bob_id}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
    assert_eq!(me(&app, &bobs).await, 200, "bob's session is untouched");

    // Sign out everywhere else: two more sessions end, this one stays.
    let tablet = browser(IPHONE, "127.0.0.4");
    let desktop = browser(FIREFOX, "127.0.0.5");
    for c in [&tablet, &desktop] {
        sign_in(&app, c, "ann", MEMBER_PASSWORD).await;
        assert_eq!(warm(&app, c).await, 200);
    }
    let (status, _) = post_form(
        &app,
        &laptop,
        "/account/sessions",
        "/account/sessions/others/end",
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(me(&app, &tablet).await, 401);
    assert_eq!(me(&app, &desktop).await, 401);
    assert_eq!(me(&app, &laptop).await, 200);
    assert_eq!(
        me(&app, &bobs).await,
        200,
        "another account's sessions stay"
    );
    let list = json(&app, &laptop, "/api/me/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
    let others = audit_events(&app, "session.end_others").await;
    assert_eq!(others[0].detail.as_deref(), Some("ended=2"));

    // The JSON mirror of "everywhere else".
    let again = browser(IPHONE, "127.0.0.6");
    sign_in(&app, &again, "ann", MEMBER_PASSWORD).await;
    let r = laptop
        .delete(app.url("/api/me/sessions/others"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ended"], 1);
    assert_eq!(me(&app, &again).await, 401);
}

async fn admins_see_and_end_any_accounts_sessions(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let ann = add_user(&app, "ann", "user").await;
    let admin = browser(FIREFOX, "127.0.0.1");
    sign_in(&app, &admin, ADMIN, ADMIN_PASSWORD).await;
    let (one, two) = (browser(IPHONE, "127.0.0.2"), browser(FIREFOX, "127.0.0.3"));
    for c in [&one, &two] {
        sign_in(&app, c, "ann", MEMBER_PASSWORD).await;
        assert_eq!(warm(&app, c).await, 200);
    }

    // The user table links to the account's sessions; the page lists them.
    let table = admin
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(table.contains(&format!("href=\"/admin/users/{ann}/sessions\"")));
    let page = admin
        .get(app.url(&format!("/admin/users/{ann}/sessions")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sessions of ann") && page.contains("Safari on iPhone"));
    assert!(
        !page.contains("id=\"current-session\""),
        "none is the admin's"
    );

    // End one from the page, the other through the API.
    let list = json(&app, &admin, &format!("/api/admin/users/{ann}/sessions")).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let id_of = |ip: &str| {
        sessions
            .iter()
            .find(|s| s["ip"] == ip)
            .and_then(|s| s["id"].as_str())
            .unwrap()
            .to_owned()
    };
    let (first, second) = (id_of("127.0.0.2"), id_of("127.0.0.3"));
    let base = format!("/admin/users/{ann}/sessions");
    let (status, _) = post_form(&app, &admin, &base, &format!("{base}/{first}/end")).await;
    assert_eq!(status, 303);
    assert_eq!(me(&app, &one).await, 401);
    assert_eq!(me(&app, &two).await, 200);
    let token = app.csrf(&admin, &base).await;
    let r = admin
        .delete(app.url(&format!("/api/admin/users/{ann}/sessions/{second}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(me(&app, &two).await, 401);
    let events = audit_events(&app, "session.end").await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.actor == ADMIN && e.target.as_deref() == Some("ann"))
    );

    // End every session of the account, from the page and through the API.
    sign_in(&app, &one, "ann", MEMBER_PASSWORD).await;
    let (status, _) = post_form(&app, &admin, &base, &format!("{base}/end-all")).await;
    assert_eq!(status, 303);
    assert_eq!(me(&app, &one).await, 401);
    sign_in(&app, &two, "ann", MEMBER_PASSWORD).await;
    let r = admin
        .delete(app.url(&format!("/api/admin/users/{ann}/sessions")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["ended"], 1);
    assert_eq!(me(&app, &two).await, 401);
    assert_eq!(me(&app, &admin).await, 200, "the admin's own session stays");

    // Unknown accounts and sessions: 404, in both front ends.
    for path in [
        "/api/admin/users/999999/sessions",
        "/api/admin/users/x/sessions",
    ] {
        assert_eq!(admin.get(app.url(path)).send().await.unwrap().status(), 404);
    }
    let r = admin
        .get(app.url("/admin/users/999999/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = admin
        .delete(app.url(&format!("/api/admin/users/{ann}/sessions/{first}")))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// Two servers on one database: a session signed in on B, used (and cached) on both, ended
/// through A — B refuses it at its next request, with no wait in between.
async fn an_ended_session_is_refused_by_every_process_at_its_next_request(db: Db) {
    let Some(a) = TestApp::with_admin(db).await else {
        return;
    };
    let b = beside(&a, |_| {}).await;
    add_user(&a, "ann", "user").await;
    // Cookies ignore the port: one client is the same browser to both servers.
    let phone = client_from("127.0.0.2");
    sign_in(&b, &phone, "ann", MEMBER_PASSWORD).await;
    assert_eq!(warm(&a, &phone).await, 200);
    assert_eq!(warm(&b, &phone).await, 200);
    let laptop = client_from("127.0.0.1");
    sign_in(&a, &laptop, "ann", MEMBER_PASSWORD).await;
    let list = json(&a, &laptop, "/api/me/sessions").await;
    let phone_id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .unwrap()
        .to_owned();
    let (status, _) = post_form(
        &a,
        &laptop,
        "/account/sessions",
        &format!("/account/sessions/{phone_id}/end"),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        me(&b, &phone).await,
        401,
        "ended, seen by the other process"
    );
    assert_eq!(me(&a, &phone).await, 401);
    assert_eq!(me(&b, &laptop).await, 200);
}

/// PostgreSQL: "last seen" is written without a notification, so the batch that records it
/// leaves every process's caches warm (on SQLite every commit moves the stamp; that is why
/// the touches are batched and at most once a minute per session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_last_seen_notifies_no_process() {
    use hallpass::db::changes::Channel;
    let Some(app) = TestApp::with_admin(Db::Postgres).await else {
        return;
    };
    let probe = || {
        app.state
            .db
            .changes()
            .expect("a probe")
            .stamp_of(Channel::Changes)
    };
    // Waits until a notification sent now has arrived (they arrive in commit order).
    let fence = || async {
        let limits = || {
            app.state
                .db
                .changes()
                .expect("a probe")
                .stamp_of(Channel::Limits)
        };
        let before = limits();
        crate::support::sql(&app, "NOTIFY hallpass_limits").await;
        let start = std::time::Instant::now();
        while limits() == before {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "fence"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    let c = client_from("127.0.0.2");
    sign_in(&app, &c, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(warm(&app, &c).await, 200);
    fence().await;
    let before = probe();
    assert!(before.is_some(), "the listener is up");
    assert!(
        app.state.sessions.flush_seen().await >= 1,
        "the session was queued"
    );
    fence().await;
    assert_eq!(probe(), before, "recording last seen notified");
    assert_eq!(me(&app, &c).await, 200);
}
