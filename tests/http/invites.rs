//! Invite links (issue 15, point 3): `/admin/invites`, the sign-up page a link opens
//! (`/invite/{token}`) and `/api/admin/invites…`, on both databases.

use hallpass::domain::{Role, Status};
use serde_json::{Value, json};

use crate::support::{
    ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, audit_events, csrf_in, sql, user,
};

both_databases!(
    an_invite_link_makes_one_account_with_its_role_and_groups,
    forms_come_back_with_their_input_and_the_message_by_the_field,
    used_expired_revoked_and_unknown_links_say_so,
    two_sign_ups_racing_on_one_link_make_one_account,
    the_api_mirrors_the_pages,
    an_invite_can_ask_for_approval,
    guessed_links_are_rate_limited,
);

const PASSWORD: &str = "a long invited passphrase";

/// The link on the "new invite" page.
fn link_in(html: &str) -> String {
    let marker = "id=\"invite-link\" class=\"code code-key\">";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no link: {html}"))
        + marker.len();
    let rest = &html[at..];
    rest[..rest.find('<').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}

/// The path of a link (`/invite/hpi_…`).
fn path_of(link: &str) -> String {
    link[link.find("/invite/").unwrap()..].to_owned()
}

/// Creates an invite through the admin form; returns the answer's status and body.
async fn create_form(
    app: &TestApp,
    admin: &reqwest::Client,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let token = app.csrf(admin, "/admin/invites").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    let r = admin
        .post(app.url("/admin/invites"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// Opens the page a link leads to; returns the CSRF token of its form.
async fn open_form(app: &TestApp, c: &reqwest::Client, path: &str) -> String {
    let page = c
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    csrf_in(&page).unwrap_or_else(|| panic!("no form on {path}: {page}"))
}

/// Submits the sign-up form of a link opened with [`open_form`].
async fn submit(
    app: &TestApp,
    c: &reqwest::Client,
    (path, token): (&str, &str),
    username: &str,
    password: &str,
) -> reqwest::Response {
    c.post(app.url(path))
        .form(&[
            ("csrf_token", token),
            ("username", username),
            ("email", ""),
            ("password", password),
            ("password_confirm", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs up through the page the link opens.
async fn sign_up(
    app: &TestApp,
    c: &reqwest::Client,
    path: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let token = open_form(app, c, path).await;
    submit(app, c, (path, &token), username, password).await
}

async fn group(app: &TestApp, name: &str) -> i64 {
    let input = hallpass::domain::groups::GroupInput::parse(name, "").unwrap();
    hallpass::service::groups::create(
        &app.state.db,
        hallpass::service::Actor::system("test"),
        input,
    )
    .await
    .unwrap()
    .id
}

async fn users_count(app: &TestApp) -> i64 {
    app.state.db.run(hallpass::db::users::count).await.unwrap()
}

async fn an_invite_link_makes_one_account_with_its_role_and_groups(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let family = group(&app, "family").await;
    let admin = app.admin_client().await;
    let id = family.to_string();
    let (status, created) = create_form(
        &app,
        &admin,
        &[
            ("username", "kim"),
            ("email", "kim@example.com"),
            ("role", "viewer"),
            ("group", &id),
            ("expires_in_days", "3"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let link = link_in(&created);
    let path = path_of(&link);
    assert!(
        link.starts_with(&format!("http://{}/invite/hpi_", app.addr)),
        "{link}"
    );
    // Stored hashed: the token is in no column of the table.
    let token = path.trim_start_matches("/invite/").to_owned();
    let q = format!(
        "UPDATE invites SET email = email WHERE token_hmac = '{token}' OR email = '{token}'"
    );
    assert_eq!(sql(&app, q).await, 0, "the token itself is stored");
    assert_eq!(sql(&app, "UPDATE invites SET email = email").await, 1);
    // The list shows it open; the link is not on it.
    let list = admin
        .get(app.url("/admin/invites"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("kim &#60;kim@example.com&#62;") && list.contains(">open<"),
        "{list}"
    );
    assert!(!list.contains(&token));

    // Anyone with the link: the page says what they get, the hints filled in.
    let c = app.client();
    let page = c.get(app.url(&path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("value=\"kim\"") && page.contains("value=\"kim@example.com\""));
    assert!(
        page.contains("<strong>viewer</strong>, member of family"),
        "{page}"
    );
    let token_field = csrf_in(&page).unwrap();
    let r = c
        .post(app.url(&path))
        .form(&[
            ("csrf_token", token_field.as_str()),
            ("username", "kimberly"),
            ("email", "kim@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let kim = user(&app, "kimberly").await;
    assert_eq!((kim.role, kim.status), (Role::Viewer, Status::Active));
    let groups = hallpass::service::groups::memberships_of(&app.state.db, kim.id)
        .await
        .unwrap();
    assert_eq!(groups, vec![(family, "admin".to_owned())]);
    // Signed in as the new account.
    let me: Value = c
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "kimberly", "{me}");

    // Used: the link says so, the list says by whom.
    let again = app.client().get(app.url(&path)).send().await.unwrap();
    assert_eq!(again.status(), 410);
    let again = again.text().await.unwrap();
    assert!(
        again.contains("id=\"invite-used\"") && again.contains("used already"),
        "{again}"
    );
    let list = admin
        .get(app.url("/admin/invites"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(">used<") && list.contains("by kimberly"),
        "{list}"
    );
    assert!(
        !list.contains("/revoke\""),
        "a used invite offers no revoke"
    );

    let created = audit_events(&app, "invite.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor, ADMIN);
    assert!(
        created[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("role=viewer groups=family")
    );
    let accepted = audit_events(&app, "invite.accept").await;
    assert_eq!(
        (accepted.len(), accepted[0].actor.as_str()),
        (1, "kimberly")
    );
}

async fn forms_come_back_with_their_input_and_the_message_by_the_field(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let ops = group(&app, "ops").await.to_string();
    let (status, page) = create_form(
        &app,
        &admin,
        &[
            ("username", "new-person"),
            ("email", "not an email"),
            ("role", "user"),
            ("group", &ops),
            ("expires_in_days", "400"),
            ("needs_approval", "on"),
        ],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("id=\"email-error\"") && page.contains("value=\"not an email\""),
        "{page}"
    );
    assert!(page.contains("id=\"expires_in_days-error\"") && page.contains("value=\"400\""));
    assert!(page.contains("value=\"new-person\""));
    assert!(
        page.contains(&format!("value=\"{ops}\" id=\"group-{ops}\" checked")),
        "{page}"
    );
    assert!(page.contains("id=\"needs_approval\" value=\"on\" checked"));
    // A hint naming an existing account.
    let (status, page) = create_form(&app, &admin, &[("username", ADMIN), ("role", "user")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"username-error\"") && page.contains("exists already"));
    // A group that does not exist.
    let (status, page) = create_form(&app, &admin, &[("role", "user"), ("group", "999")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"groups-error\""), "{page}");
    assert_eq!(sql(&app, "UPDATE invites SET email = email").await, 0);

    // The sign-up form: the registration rules and messages, the input kept (not passwords).
    let (_, created) = create_form(&app, &admin, &[("role", "user")]).await;
    let path = path_of(&link_in(&created));
    let c = app.client();
    let r = sign_up(&app, &c, &path, "x", "short").await;
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"username-error\"") && page.contains("value=\"x\""));
    assert!(
        page.contains("id=\"password-error\"") && !page.contains("short\""),
        "{page}"
    );
    let r = sign_up(&app, &c, &path, ADMIN, PASSWORD).await;
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("This username is already taken."), "{page}");
    // Still open: failed attempts do not use it up.
    assert_eq!(
        sign_up(&app, &c, &path, "newbie", PASSWORD).await.status(),
        303
    );
}

async fn used_expired_revoked_and_unknown_links_say_so(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let mut paths = Vec::new();
    for _ in 0..2 {
        let (_, created) = create_form(&app, &admin, &[("role", "user")]).await;
        paths.push(path_of(&link_in(&created)));
    }
    let before = users_count(&app).await;
    // Revoke the first through its confirmation page.
    let list = admin
        .get(app.url("/admin/invites"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = list.find("/revoke\"").unwrap();
    let start = list[..at].rfind("href=\"").unwrap() + 6;
    let confirm = &list[start..at + 7];
    let page = admin
        .get(app.url(confirm))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Revoke invite") && page.contains("stops working"),
        "{page}"
    );
    let token = csrf_in(&page).unwrap();
    let r = admin
        .post(app.url(confirm))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/invites?notice=revoked");
    assert_eq!(audit_events(&app, "invite.revoke").await.len(), 1);
    // Revoking again: refused, with the reason.
    let r = admin
        .post(app.url(confirm))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // The newest invite is listed first: the one revoked is paths[1].
    let (revoked, expired) = (&paths[1], &paths[0]);
    sql(
        &app,
        "UPDATE invites SET expires_at = 1 WHERE revoked_at IS NULL",
    )
    .await;

    let c = app.client();
    for (path, status, id, words) in [
        (revoked.clone(), 410, "invite-revoked", "was revoked"),
        (expired.clone(), 410, "invite-expired", "has expired"),
        (
            "/invite/hpi_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            404,
            "invite-unknown",
            "not valid",
        ),
        (
            "/invite/nonsense".to_owned(),
            404,
            "invite-unknown",
            "not valid",
        ),
    ] {
        let r = c.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(&format!("id=\"{id}\"")) && page.contains(words),
            "{path}: {page}"
        );
        assert!(!page.contains("id=\"invite-form\""));
        // Submitting anyway makes no account.
        let token = app.csrf(&c, "/login").await;
        let r = c
            .post(app.url(&path))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", "sneaky"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "POST {path}");
    }
    assert_eq!(users_count(&app).await, before);
    let list = admin
        .get(app.url("/admin/invites"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(">revoked<") && list.contains(">expired<"),
        "{list}"
    );
}

async fn two_sign_ups_racing_on_one_link_make_one_account(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    for round in 0..2 {
        let (_, created) = create_form(&app, &admin, &[("role", "user")]).await;
        let path = path_of(&link_in(&created));
        let before = users_count(&app).await;
        let (a, b) = (app.client(), app.client());
        // Both open the page first; then both submit at once.
        let (ta, tb) = (
            open_form(&app, &a, &path).await,
            open_form(&app, &b, &path).await,
        );
        let (name_a, name_b) = (format!("racer-a{round}"), format!("racer-b{round}"));
        let (ra, rb) = tokio::join!(
            submit(&app, &a, (&path, &ta), &name_a, PASSWORD),
            submit(&app, &b, (&path, &tb), &name_b, PASSWORD),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 410], "round {round}");
        assert_eq!(users_count(&app).await, before + 1);
    }
    assert_eq!(audit_events(&app, "invite.accept").await.len(), 2);
}

struct Api<'a> {
    app: &'a TestApp,
    c: reqwest::Client,
    token: String,
}

impl Api<'_> {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.app.url(path);
        let req = match method {
            "GET" => self.c.get(url),
            "POST" => self.c.post(url),
            "DELETE" => self.c.delete(url),
            m => panic!("{m}"),
        }
        .header("X-CSRF-Token", &self.token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

async fn the_api_mirrors_the_pages(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (c, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let api = Api {
        app: &app,
        c,
        token,
    };
    let media = group(&app, "media").await;

    let (s, created) = api
        .send(
            "POST",
            "/api/admin/invites",
            Some(json!({"email": "lee@example.com", "role": "user", "groups": [media]})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let url = created["url"].as_str().unwrap();
    let secret = created["token"].as_str().unwrap();
    assert!(url.ends_with(&format!("/invite/{secret}")) && secret.starts_with("hpi_"));
    assert_eq!(created["invite"]["state"], "open");
    assert_eq!(created["invite"]["groups"][0]["name"], "media");
    let id = created["invite"]["id"].as_i64().unwrap();
    // A default expiry of 7 days.
    let i = &created["invite"];
    assert_eq!(
        i["expires_at"].as_i64().unwrap() - i["created_at"].as_i64().unwrap(),
        7 * 86_400
    );

    let (s, list) = api.send("GET", "/api/admin/invites", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["invites"][0]["id"], id);
    assert!(
        !list.to_string().contains(secret),
        "the token is shown once"
    );
    let (s, one) = api
        .send("GET", &format!("/api/admin/invites/{id}"), None)
        .await;
    assert_eq!((s, one["email"].as_str()), (200, Some("lee@example.com")));

    // Bad input: every field's message at once.
    let (s, bad) = api
        .send(
            "POST",
            "/api/admin/invites",
            Some(json!({"role": "owner", "expires_in_days": 0, "email": "x"})),
        )
        .await;
    assert_eq!(
        (s, bad["error"]["code"].as_str()),
        (422, Some("VALIDATION_FAILED"))
    );
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "role", "expires_in_days"]);
    let (s, bad) = api
        .send("POST", "/api/admin/invites", Some(json!({"groups": [999]})))
        .await;
    assert_eq!(
        (s, bad["error"]["fields"][0]["field"].as_str()),
        (422, Some("groups"))
    );
    let (s, _) = api
        .send("POST", "/api/admin/invites", Some(json!({"groups": "x"})))
        .await;
    assert_eq!(s, 422);

    // Revoke: 204, then the link is dead and a second revoke says why.
    let (s, _) = api
        .send("DELETE", &format!("/api/admin/invites/{id}"), None)
        .await;
    assert_eq!(s, 204);
    let (s, again) = api
        .send("DELETE", &format!("/api/admin/invites/{id}"), None)
        .await;
    assert_eq!(
        (s, again["error"]["code"].as_str()),
        (409, Some("INVITE_NOT_OPEN"))
    );
    let (_, one) = api
        .send("GET", &format!("/api/admin/invites/{id}"), None)
        .await;
    assert_eq!(one["state"], "revoked");
    let r = app.client().get(url).send().await.unwrap();
    assert_eq!(r.status(), 410);
    let (s, missing) = api.send("GET", "/api/admin/invites/999", None).await;
    assert_eq!(
        (s, missing["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (s, _) = api.send("DELETE", "/api/admin/invites/999", None).await;
    assert_eq!(s, 404);
    assert_eq!(audit_events(&app, "invite.create").await.len(), 1);
    assert_eq!(audit_events(&app, "invite.revoke").await.len(), 1);
}

async fn an_invite_can_ask_for_approval(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = app.admin_client().await;
    let (_, created) =
        create_form(&app, &admin, &[("role", "user"), ("needs_approval", "on")]).await;
    assert!(created.contains("waits for an administrator"));
    let path = path_of(&link_in(&created));
    let c = app.client();
    let page = c
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"approval-hint\""));
    assert_eq!(
        sign_up(&app, &c, &path, "waiting", PASSWORD).await.status(),
        303
    );
    assert_eq!(user(&app, "waiting").await.status, Status::Pending);
    let home = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 403);
    assert!(home.text().await.unwrap().contains("approval"));
    // A signed-in visitor sees no form: the link is left for the person it was meant for.
    let (_, created) = create_form(&app, &admin, &[("role", "user")]).await;
    let path = path_of(&link_in(&created));
    let page = admin
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"signed-in\"") && !page.contains("id=\"invite-form\""));
    let token = app.csrf(&admin, &path).await;
    for (target, back) in [(path.as_str(), path.as_str()), ("/invite/%C3%A9", "/")] {
        let r = admin
            .post(app.url(target))
            .form(&[("csrf_token", token.as_str()), ("username", "nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{target}");
        assert_eq!(r.headers()["location"], back);
    }
}

async fn guessed_links_are_rate_limited(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.rate_limit.max_failures_per_ip = 3;
        },
        true,
    )
    .await
    else {
        return;
    };
    let c = app.client();
    for i in 0..3 {
        let guess = format!("/invite/hpi_{i}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(c.get(app.url(&guess)).send().await.unwrap().status(), 404);
    }
    let r = c
        .get(app.url("/invite/hpi_9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
}
