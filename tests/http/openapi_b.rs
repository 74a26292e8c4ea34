//! The OpenAPI document against the wire (issue 16, point 3) for api keys, sessions and
//! lockouts, groups and invites: every operation of those modules is called over real HTTP,
//! and each answer is validated against the schema the document gives for its operation and
//! status (`openapi::assert_conforms`), success answers and documented errors alike.
//! Fixtures make the nullable fields show both ways (a key with and without expiry, a group
//! with and without description, an invite used and revoked), so a wrong type or `required`
//! on either side fails here.

use serde_json::{Value, json};

use hallpass::config::{Config, HumanDuration};

use crate::openapi::{Caller, document};
use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, MEMBER_PASSWORD, TestApp, add_user, client_from, sql,
};

both_databases!(
    api_keys_sessions_and_lockouts_answer_as_documented,
    groups_and_invites_answer_as_documented
);

/// 3 failures per account and address, 6 per address, in 15 minutes (lockouts to list and
/// lift).
fn limits(c: &mut Config) {
    let r = &mut c.auth.rate_limit;
    r.max_failures_per_account = 3;
    r.max_failures_per_ip = 6;
    r.window = HumanDuration::secs(900);
}

async fn api_keys_sessions_and_lockouts_answer_as_documented(db: Db) {
    let Some(app) = TestApp::start(db, limits, true).await else {
        return;
    };
    let doc = document(&app).await;
    let ann = add_user(&app, "ann", "user").await;
    let admin = Caller::signed_in(&app, &doc, ADMIN, ADMIN_PASSWORD).await;
    let ann_c = Caller::signed_in(&app, &doc, "ann", MEMBER_PASSWORD).await;

    // API keys: one that expires and one that does not, so both forms of `expires_at` show.
    let own = "/api/me/api-keys";
    let one = "/api/me/api-keys/{id}";
    let created = admin
        .call(
            "POST",
            own,
            own,
            Some(json!({"name": "backup", "expires_in_days": 30})),
            201,
        )
        .await;
    assert!(created["key"].as_str().unwrap().starts_with("hp_"));
    assert!(created["expires_at"].is_string());
    let forever = admin
        .call("POST", own, own, Some(json!({"name": "forever"})), 201)
        .await;
    assert!(forever["expires_at"].is_null());
    let e = admin
        .call("POST", own, own, Some(json!({"name": " "})), 422)
        .await;
    assert_eq!(e["error"]["fields"][0]["field"], "name");
    // Used once, so `last_used_at` is a time in the listing.
    let by_key = Caller::with_key(&app, &doc, created["key"].as_str().unwrap());
    let listed = by_key.call("GET", own, own, None, 200).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 2);
    let listed = admin.call("GET", own, own, None, 200).await;
    assert!(
        listed["api_keys"][0]["last_used_at"].is_string(),
        "{listed}"
    );
    let forever_id = forever["id"].as_i64().unwrap();
    admin
        .call("DELETE", one, &format!("{own}/{forever_id}"), None, 204)
        .await;
    admin
        .call("DELETE", one, &format!("{own}/{forever_id}"), None, 404)
        .await;

    let anns = ann_c
        .call("POST", own, own, Some(json!({"name": "ann's"})), 201)
        .await;
    let of_user = "/api/admin/users/{id}/api-keys";
    let listed = admin
        .call(
            "GET",
            of_user,
            &format!("/api/admin/users/{ann}/api-keys"),
            None,
            200,
        )
        .await;
    assert_eq!(listed["api_keys"][0]["id"], anns["id"]);
    admin
        .call(
            "GET",
            of_user,
            "/api/admin/users/999999/api-keys",
            None,
            404,
        )
        .await;
    let any = "/api/admin/api-keys/{id}";
    admin
        .call(
            "DELETE",
            any,
            &format!("/api/admin/api-keys/{}", anns["id"]),
            None,
            204,
        )
        .await;
    admin
        .call("DELETE", any, "/api/admin/api-keys/999999", None, 404)
        .await;

    // Sessions: ann signed in twice more (three sessions), one ended by id, then the rest.
    let mine = "/api/me/sessions";
    let listed = ann_c.call("GET", mine, mine, None, 200).await;
    assert_eq!(listed["sessions"][0]["current"], true);
    let anns_own = listed["sessions"][0]["id"].clone();
    Caller::signed_in(&app, &doc, "ann", MEMBER_PASSWORD).await;
    Caller::signed_in(&app, &doc, "ann", MEMBER_PASSWORD).await;
    let of_ann = format!("/api/admin/users/{ann}/sessions");
    let listed = admin
        .call("GET", "/api/admin/users/{id}/sessions", &of_ann, None, 200)
        .await;
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3);
    let other = sessions.iter().find(|s| s["id"] != anns_own).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let one_of_user = "/api/admin/users/{id}/sessions/{session}";
    admin
        .call(
            "DELETE",
            one_of_user,
            &format!("{of_ann}/{other}"),
            None,
            204,
        )
        .await;
    admin
        .call(
            "DELETE",
            one_of_user,
            &format!("{of_ann}/{other}"),
            None,
            404,
        )
        .await;
    admin
        .call(
            "GET",
            "/api/admin/users/{id}/sessions",
            "/api/admin/users/999999/sessions",
            None,
            404,
        )
        .await;
    let own_one = "/api/me/sessions/{id}";
    let listed = ann_c.call("GET", mine, mine, None, 200).await;
    let last = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ann_c
        .call("DELETE", own_one, &format!("{mine}/{last}"), None, 204)
        .await;
    ann_c
        .call("DELETE", own_one, &format!("{mine}/{last}"), None, 404)
        .await;
    Caller::signed_in(&app, &doc, "ann", MEMBER_PASSWORD).await;
    let others = "/api/me/sessions/others";
    let ended = ann_c.call("DELETE", others, others, None, 200).await;
    assert_eq!(ended["ended"], 1);
    let all = "/api/admin/users/{id}/sessions";
    let ended = admin.call("DELETE", all, &of_ann, None, 200).await;
    assert_eq!(ended["ended"], 1, "ann's own session was the last");
    admin
        .call("DELETE", all, "/api/admin/users/999999/sessions", None, 404)
        .await;

    // Lockouts: ann's name tried wrongly from one address past the account's limit, and
    // six names from another past the address's (no account: `account` is null).
    for (from, names) in [("127.0.0.2", ["ann"; 3].to_vec()), ("127.0.0.3", guesses())] {
        let attacker = client_from(from);
        for name in names {
            let r = attacker
                .post(app.url("/api/auth/login"))
                .json(&json!({"username": name, "password": "wrong"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    }
    let lockouts = "/api/admin/lockouts";
    let listed = admin.call("GET", lockouts, lockouts, None, 200).await;
    let listed = listed["lockouts"].as_array().unwrap();
    let scopes: Vec<(&Value, &Value)> = listed
        .iter()
        .map(|l| (&l["scope"], &l["account"]))
        .collect();
    assert!(
        scopes.contains(&(&json!("account"), &json!("ann"))),
        "{listed:?}"
    );
    assert!(
        scopes.contains(&(&json!("address"), &Value::Null)),
        "{listed:?}"
    );
    let lift = "/api/admin/lockouts/{id}";
    let path = format!("{lockouts}/{}", listed[0]["id"].as_str().unwrap());
    let lifted = admin.call("DELETE", lift, &path, None, 200).await;
    assert_eq!(lifted["id"], listed[0]["id"]);
    admin.call("DELETE", lift, &path, None, 404).await;
}

/// Six different account names: none reaches its own limit, their address does.
fn guesses() -> Vec<&'static str> {
    vec!["g0", "g1", "g2", "g3", "g4", "g5"]
}

async fn groups_and_invites_answer_as_documented(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let doc = document(&app).await;
    let admin = Caller::signed_in(&app, &doc, ADMIN, ADMIN_PASSWORD).await;
    let ann = add_user(&app, "ann", "user").await;
    let bob = add_user(&app, "bob", "user").await;
    sql(
        &app,
        format!("UPDATE users SET display_name = 'Bob B.' WHERE id = {bob}"),
    )
    .await;

    // Groups: one with a description, one without.
    let groups = "/api/admin/groups";
    let family = admin
        .call(
            "POST",
            groups,
            groups,
            Some(json!({"name": "family", "description": "Our people"})),
            201,
        )
        .await;
    let media = admin
        .call("POST", groups, groups, Some(json!({"name": "media"})), 201)
        .await;
    assert!(media["description"].is_null());
    let e = admin
        .call("POST", groups, groups, Some(json!({"name": "FAMILY"})), 409)
        .await;
    assert_eq!(e["error"]["code"], "GROUP_NAME_TAKEN");
    let e = admin
        .call("POST", groups, groups, Some(json!({"name": ""})), 422)
        .await;
    assert_eq!(e["error"]["fields"][0]["field"], "name");
    let listed = admin.call("GET", groups, groups, None, 200).await;
    assert_eq!(listed["groups"].as_array().unwrap().len(), 2);

    let one = "/api/admin/groups/{id}";
    let fid = family["id"].as_i64().unwrap();
    let f = format!("{groups}/{fid}");
    let detail = admin.call("GET", one, &f, None, 200).await;
    assert_eq!(detail["apps"], json!([]));
    let patched = admin
        .call("PATCH", one, &f, Some(json!({"name": "household"})), 200)
        .await;
    assert_eq!(patched["description"], "Our people");
    admin
        .call("PATCH", one, &f, Some(json!({"name": "MEDIA"})), 409)
        .await;
    admin
        .call("GET", one, &format!("{groups}/999999"), None, 404)
        .await;

    let members = "/api/admin/groups/{id}/members";
    let fm = format!("{f}/members");
    let added = admin
        .call("POST", members, &fm, Some(json!({"user_id": ann})), 201)
        .await;
    assert_eq!(added["source"], "admin");
    admin
        .call("POST", members, &fm, Some(json!({"username": "bob"})), 201)
        .await;
    admin
        .call("POST", members, &fm, Some(json!({"username": "ann"})), 409)
        .await;
    admin.call("POST", members, &fm, Some(json!({})), 422).await;
    admin
        .call(
            "POST",
            members,
            &fm,
            Some(json!({"username": "nobody"})),
            404,
        )
        .await;
    let listed = admin.call("GET", members, &fm, None, 200).await;
    let names: Vec<&Value> = listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["display_name"])
        .collect();
    assert!(names.contains(&&Value::Null) && names.contains(&&json!("Bob B.")));
    admin
        .call(
            "GET",
            members,
            &format!("{groups}/999999/members"),
            None,
            404,
        )
        .await;
    let member = "/api/admin/groups/{id}/members/{user_id}";
    admin
        .call("DELETE", member, &format!("{fm}/{bob}"), None, 204)
        .await;
    admin
        .call("DELETE", member, &format!("{fm}/{bob}"), None, 404)
        .await;
    let m = format!("{groups}/{}", media["id"]);
    admin.call("DELETE", one, &m, None, 204).await;
    admin.call("DELETE", one, &m, None, 404).await;

    // Invites: one with every hint, one with none; one used, one revoked.
    let invites = "/api/admin/invites";
    let full = admin
        .call(
            "POST",
            invites,
            invites,
            Some(json!({
                "email": "lee@example.com", "username": "lee", "role": "viewer",
                "groups": [fid], "expires_in_days": 3, "needs_approval": true
            })),
            201,
        )
        .await;
    assert_eq!(full["invite"]["groups"][0]["name"], "household");
    let bare = admin
        .call("POST", invites, invites, Some(json!({})), 201)
        .await;
    assert!(bare["invite"]["email"].is_null() && bare["invite"]["state"] == "open");
    let e = admin
        .call(
            "POST",
            invites,
            invites,
            Some(json!({"role": "owner", "expires_in_days": 0})),
            422,
        )
        .await;
    assert_eq!(e["error"]["fields"].as_array().unwrap().len(), 2);

    let one = "/api/admin/invites/{id}";
    let full_id = full["invite"]["id"].as_i64().unwrap();
    sql(
        &app,
        format!(
            "UPDATE invites SET used_at = created_at + 60, used_by = {ann} WHERE id = {full_id}"
        ),
    )
    .await;
    let used = admin
        .call("GET", one, &format!("{invites}/{full_id}"), None, 200)
        .await;
    assert_eq!(
        (&used["state"], &used["used_by"]),
        (&json!("used"), &json!("ann"))
    );
    let b = format!("{invites}/{}", bare["invite"]["id"]);
    admin.call("DELETE", one, &b, None, 204).await;
    let e = admin.call("DELETE", one, &b, None, 409).await;
    assert_eq!(e["error"]["code"], "INVITE_NOT_OPEN");
    let listed = admin.call("GET", invites, invites, None, 200).await;
    let states: Vec<&Value> = listed["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["state"])
        .collect();
    assert_eq!(states, [&json!("revoked"), &json!("used")]);
    admin
        .call("GET", one, &format!("{invites}/999999"), None, 404)
        .await;
    admin
        .call("DELETE", one, &format!("{invites}/999999"), None, 404)
        .await;
}
