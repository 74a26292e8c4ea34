//! `hallpass recover …`: the real binary, run against the database of a live server, on both
//! databases. The server keeps running while the CLI changes its data, so a session the CLI
//! ends stops working on the very next request.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hallpass::db::{audit, identities, oidc_providers, settings, users};
use hallpass::domain::{Role, Status, User, Username};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, TestDb, api_login, user};

const BIN: &str = env!("CARGO_BIN_EXE_hallpass");

/// What a run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Ran {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// `hallpass recover ARGS` on `url`, with a clean environment (nothing from the developer's
/// shell) in a directory without a `hallpass.toml`.
fn recover_on(url: &str, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HALLPASS_DATABASE__URL", url)
        .arg("recover")
        .args(args);
    c
}

pub(crate) fn recover(app: &TestApp, args: &[&str]) -> Command {
    recover_on(app.state.config.database.url.expose(), app.data_dir(), args)
}

/// Runs the command off the async workers (the server under test shares them). `stdin`:
/// what to send, or `None` for no input at all (`/dev/null`: not a terminal).
pub(crate) async fn run(mut cmd: Command, stdin: Option<&str>) -> Ran {
    let input = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().unwrap();
        if let Some(i) = input {
            // A command that stops before reading closes the pipe: not an error here.
            let _ = child.stdin.take().unwrap().write_all(i.as_bytes());
        }
        let out = child.wait_with_output().unwrap();
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Runs the command on a pseudo-terminal (util-linux `script`), typing each answer once its
/// prompt has appeared. Returns the exit code and everything the terminal showed.
pub(crate) async fn on_terminal(cmd: Command, answers: &[(&str, &str)]) -> (Option<i32>, String) {
    let answers: Vec<(String, String)> = answers
        .iter()
        .map(|(p, a)| (p.to_string(), a.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let line = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script
            .args(["-q", "-e", "-c", &line, "/dev/null"])
            .env_clear()
            .envs(
                cmd.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .current_dir(cmd.get_current_dir().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = script
            .spawn()
            .expect("util-linux `script` is needed for the terminal tests");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        let mut shown = String::new();
        let mut from = 0;
        for (prompt, answer) in &answers {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !shown[from..].contains(prompt.as_str()) {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(chunk) => shown.push_str(&chunk),
                    Err(_) => panic!("no prompt {prompt:?}; the terminal showed:\n{shown}"),
                }
            }
            from = shown.len();
            // The prompt is printed just before echo is turned off: let that happen first.
            std::thread::sleep(Duration::from_millis(200));
            stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
            stdin.flush().unwrap();
        }
        let status = child.wait().unwrap();
        drop(stdin);
        while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
            shown.push_str(&chunk);
        }
        (status.code(), shown)
    })
    .await
    .unwrap()
}

/// The audit events the CLI wrote: (action, target, detail).
async fn cli_events(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    app.state
        .db
        .run(|c| audit::recent(c, 100))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.actor == "cli")
        .map(|e| (e.action, e.target, e.detail))
        .collect()
}

/// Whether `client`'s session still signs it in.
async fn signed_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let r = client.get(app.url("/api/auth/me")).send().await.unwrap();
    r.status() == 200
}

/// Status of a password sign-in through the JSON API.
async fn password_login(app: &TestApp, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/api/auth/login"))
        .json(&serde_json::json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Creates an active account with a password through the admin API.
async fn create_user(app: &TestApp, username: &str, role: &str) -> User {
    let (admin, csrf) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
    let r = admin
        .post(app.url("/api/admin/users"))
        .header("X-CSRF-Token", csrf)
        .json(&serde_json::json!({
            "username": username,
            "role": role,
            "password": format!("{username} password 123"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    user(app, username).await
}

/// Stores an SSO provider as the admin UI would (its secret is ciphertext) and links
/// `subject` at it to `user_id`.
async fn stored_provider_and_link(app: &TestApp, id: &str, user_id: i64, subject: &str) {
    let (id, subject) = (id.to_owned(), subject.to_owned());
    app.state
        .db
        .run(move |c| {
            oidc_providers::insert(
                c,
                &oidc_providers::StoredProvider {
                    id: id.clone(),
                    label: format!("{id} label"),
                    issuer: format!("https://{id}.example.com"),
                    client_id: "hallpass-client".into(),
                    client_secret: Some("c2VhbGVkLXNlY3JldC1jaXBoZXJ0ZXh0".into()),
                    scopes: "openid profile email".into(),
                    subject_claim: "sub".into(),
                    username_claim: "preferred_username".into(),
                    email_claim: "email".into(),
                    policy: "link".into(),
                    groups_claim: None,
                    enabled: true,
                    previous: None,
                },
            )?;
            identities::insert(
                c,
                &identities::NewIdentity {
                    user_id,
                    provider: &id,
                    issuer: &format!("https://{id}.example.com"),
                    subject: &subject,
                    email: None,
                    display_name: None,
                },
            )
        })
        .await
        .unwrap();
}

/// An account without a password that signs in through `provider:subject` only.
async fn passwordless(app: &TestApp, username: &str, provider: &str, subject: &str) -> i64 {
    let (username, provider, subject) =
        (username.to_owned(), provider.to_owned(), subject.to_owned());
    app.state
        .db
        .run(move |c| {
            let u = users::insert(
                c,
                &users::NewUser {
                    username: &Username::parse(&username).unwrap(),
                    email: None,
                    display_name: None,
                    role: Role::User,
                    status: Status::Active,
                    password_hash: None,
                    created_by: None,
                },
            )?;
            identities::insert(
                c,
                &identities::NewIdentity {
                    user_id: u.id,
                    provider: &provider,
                    issuer: &provider,
                    subject: &subject,
                    email: None,
                    display_name: None,
                },
            )?;
            Ok::<_, hallpass::db::DbError>(u.id)
        })
        .await
        .unwrap()
}

/// Password sign-in off, SSO login on: what an admin who went SSO-only leaves behind.
async fn sso_only(app: &TestApp) {
    app.state
        .db
        .run(|c| settings::set_sign_in(c, false, true))
        .await
        .unwrap();
}

#[test]
fn help_lists_recover_and_its_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    assert!(top.contains("recover"), "{top}");
    let sub = help(&["recover", "--help"]);
    for name in [
        "status",
        "wipe-sso",
        "enable-local",
        "reset-password",
        "create-admin",
        "disable-user",
        "delete-user",
    ] {
        assert!(sub.contains(name), "{name} missing from:\n{sub}");
    }
    // A missing argument is a usage error.
    let out = Command::new(BIN)
        .args(["recover", "reset-password"])
        .current_dir(dir.path())
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--username"));
}

both_databases!(
    status_on_a_new_database_applies_the_migrations,
    status_shows_settings_providers_and_accounts_without_secrets,
    wipe_sso_removes_links_and_providers_and_turns_password_sign_in_on,
    enable_local_turns_password_sign_in_back_on,
    reset_password_from_stdin_ends_sessions_and_the_new_password_works,
    create_admin_makes_an_active_admin_who_can_sign_in,
    disable_and_delete_end_sessions_and_are_audited,
    the_last_active_admin_is_never_disabled_or_deleted,
    without_a_terminal_nothing_is_asked_and_nothing_changes,
    on_a_terminal_passwords_are_hidden_and_changes_confirmed,
    create_admin_on_an_empty_instance_ends_the_setup_wizard_at_once,
);

async fn create_admin_on_an_empty_instance_ends_the_setup_wizard_at_once(db: Db) {
    let Some(app) = TestApp::empty(db).await else {
        return;
    };
    let c = app.client();
    let r = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/setup");
    let ran = run(
        recover(
            &app,
            &["create-admin", "--username", "rescue", "--password-stdin"],
        ),
        Some("rescue password 1\n"),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    // The running server notices without a restart.
    let r = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, token) = api_login(&app, "rescue", "rescue password 1").await;
    assert!(!token.is_empty());
}

async fn status_on_a_new_database_applies_the_migrations(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("new/hallpass.db").display()),
        Db::Postgres => match TestDb::new(Db::Postgres) {
            Some(d) => d.url,
            None => return,
        },
    };
    let ran = run(recover_on(&url, dir.path(), &["status"]), None).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("Accounts (0)"), "{}", ran.stdout);
    assert!(
        ran.stdout
            .contains("No active admin. Create one: hallpass recover create-admin"),
        "{}",
        ran.stdout
    );
    assert!(ran.stderr.contains("Applied"), "{}", ran.stderr);
    // The second time there is nothing left to apply.
    let again = run(recover_on(&url, dir.path(), &["status"]), None).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(!again.stderr.contains("Applied"), "{}", again.stderr);
}

async fn status_shows_settings_providers_and_accounts_without_secrets(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = user(&app, ADMIN).await;
    stored_provider_and_link(&app, "keycloak", admin.id, "admin-subject-42").await;
    create_user(&app, "viewer1", "viewer").await;
    sso_only(&app).await;
    let mut cmd = recover(&app, &["status"]);
    cmd.env("HALLPASS_OIDC_PROVIDERS", "authelia")
        .env("HALLPASS_OIDC_AUTHELIA_ISSUER", "https://auth.example.com")
        .env("HALLPASS_OIDC_AUTHELIA_CLIENT_ID", "hp")
        .env(
            "HALLPASS_OIDC_AUTHELIA_CLIENT_SECRET",
            "env-client-secret-xyz",
        )
        .env("HALLPASS_SSO_DISABLE_OVERRIDE", "true");
    let ran = run(cmd, None).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let out = &ran.stdout;
    // Settings: as stored, and as in effect under the override.
    assert!(
        out.contains(
            "Password sign-in  off as stored, on in effect (HALLPASS_SSO_DISABLE_OVERRIDE is set)"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "SSO login         on as stored, off in effect (HALLPASS_SSO_DISABLE_OVERRIDE is set)"
        ),
        "{out}"
    );
    assert!(out.contains("Registration      off"), "{out}");
    // Providers from both sources, secrets only as "set".
    let row = |id: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no row for {id}: {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("authelia"),
        [
            "authelia",
            "env",
            "yes",
            "authelia",
            "https://auth.example.com",
            "hp",
            "link",
            "set"
        ]
    );
    assert_eq!(
        row("keycloak"),
        [
            "keycloak",
            "stored",
            "yes",
            "keycloak",
            "label",
            "https://keycloak.example.com",
            "hallpass-client",
            "link",
            "set"
        ]
    );
    assert!(!out.contains("env-client-secret-xyz"), "{out}");
    assert!(!out.contains("c2VhbGVk"), "{out}");
    // Accounts with their sign-in methods.
    let admin_row = row("admin ");
    assert_eq!(
        admin_row[..5],
        [
            "admin",
            "admin",
            "active",
            "yes",
            "keycloak:admin-subject-42"
        ]
    );
    let viewer_row = row("viewer1");
    assert_eq!(viewer_row[..5], ["viewer1", "viewer", "active", "yes", "-"]);
    assert!(out.contains("Accounts (2)"), "{out}");
    assert!(out.contains("Active admins: admin"), "{out}");
    assert!(!out.contains("argon2"), "no hash is ever printed: {out}");

    // Without the override, password sign-in is off in effect, and status says how to fix it.
    let ran = run(recover(&app, &["status"]), None).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("Password sign-in  off\n"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("Password sign-in is off. Turn it back on: hallpass recover enable-local"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("Forward-auth      off"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("Break-glass admin not set"),
        "{}",
        ran.stdout
    );

    // With no enabled provider, passwords stay on whatever is stored (the sign-in page's rule).
    app.state
        .db
        .run(|c| {
            let mut p = oidc_providers::get(c, "keycloak")?.unwrap();
            p.enabled = false;
            oidc_providers::update(c, &p)
        })
        .await
        .unwrap();
    let ran = run(recover(&app, &["status"]), None).await;
    assert!(
        ran.stdout
            .contains("Password sign-in  off as stored, on in effect (no SSO provider is enabled)"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout
            .contains("SSO login         on as stored, off in effect (no SSO provider is enabled)"),
        "{}",
        ran.stdout
    );
    assert!(cli_events(&app).await.is_empty(), "status changes nothing");
}

async fn wipe_sso_removes_links_and_providers_and_turns_password_sign_in_on(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let admin = user(&app, ADMIN).await;
    let bob = create_user(&app, "bob", "user").await;
    stored_provider_and_link(&app, "keycloak", admin.id, "admin-sub").await;
    stored_provider_and_link(&app, "pocket", bob.id, "bob-sub").await;
    passwordless(&app, "ssoonly", "pocket", "ssoonly-sub").await;
    passwordless(&app, "proxied", "proxy", "proxied-remote-user").await;
    // Passwordless too, but with a passkey: it still has a way in, so it is not named.
    let keyed = passwordless(&app, "keyed", "pocket", "keyed-sub").await;
    app.state
        .db
        .run(move |c| {
            hallpass::db::passkeys::insert(
                c,
                &hallpass::db::passkeys::NewPasskey {
                    user_id: keyed,
                    name: "Laptop",
                    credential_id: "keyed-credential",
                    user_handle: "keyed-handle",
                    passkey: "{}",
                },
            )
        })
        .await
        .unwrap();
    let (admin_session, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let (bob_session, _) = api_login(&app, "bob", "bob password 123").await;
    sso_only(&app).await;
    assert_ne!(password_login(&app, ADMIN, ADMIN_PASSWORD).await, 200);
    let (admin_v, bob_v) = (
        user(&app, ADMIN).await.session_version,
        user(&app, "bob").await.session_version,
    );

    let ran = run(recover(&app, &["wipe-sso", "--force"]), None).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout
            .contains("Removed 2 stored SSO provider(s) and 4 SSO identity link(s)"),
        "{}",
        ran.stdout
    );
    // Who is left without a way in is named; a forward-auth user still has one.
    assert!(
        ran.stdout
            .contains("cannot sign in until they get one (`hallpass recover reset-password --username NAME`): ssoonly\n"),
        "{}",
        ran.stdout
    );
    let (links, providers, s) = app
        .state
        .db
        .run(|c| {
            Ok::<_, hallpass::db::DbError>((
                identities::all(c)?,
                oidc_providers::list(c)?,
                settings::get(c)?,
            ))
        })
        .await
        .unwrap();
    assert!(providers.is_empty());
    let kept: Vec<String> = links
        .iter()
        .map(|l| format!("{}:{}", l.provider, l.subject))
        .collect();
    assert_eq!(
        kept,
        ["proxy:proxied-remote-user"],
        "forward-auth links stay"
    );
    assert!(s.local_login_enabled, "password sign-in is on");
    assert_eq!(s.sso_enabled, Some(false), "SSO login is off");
    // Every account's sessions ended.
    assert_eq!(user(&app, ADMIN).await.session_version, admin_v + 1);
    assert_eq!(user(&app, "bob").await.session_version, bob_v + 1);
    assert!(!signed_in(&app, &admin_session).await);
    assert!(!signed_in(&app, &bob_session).await);
    // And passwords work again.
    assert_eq!(password_login(&app, ADMIN, ADMIN_PASSWORD).await, 200);
    let events = cli_events(&app).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (action, target, detail) = &events[0];
    assert_eq!(
        (action.as_str(), target.as_deref()),
        ("sso.wipe", Some("instance"))
    );
    assert!(
        detail.as_deref().is_some_and(|d| d.contains(
            "2 stored providers and 4 SSO identities removed; sso_login on -> off, local_login off -> on"
        )),
        "{detail:?}"
    );
}

async fn enable_local_turns_password_sign_in_back_on(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (session, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let admin = user(&app, ADMIN).await;
    stored_provider_and_link(&app, "keycloak", admin.id, "admin-sub").await;
    sso_only(&app).await;
    assert_eq!(password_login(&app, ADMIN, ADMIN_PASSWORD).await, 403);
    let version = user(&app, ADMIN).await.session_version;

    let ran = run(recover(&app, &["enable-local"]), None).await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("Password sign-in is on again."),
        "{ran:?}"
    );
    assert_eq!(password_login(&app, ADMIN, ADMIN_PASSWORD).await, 200);
    let s = app.state.db.run(settings::get).await.unwrap();
    assert!(s.local_login_enabled);
    assert_eq!(s.sso_enabled, Some(true), "the SSO switch is left alone");
    // No account changed, so no session ended.
    assert_eq!(user(&app, ADMIN).await.session_version, version);
    assert!(signed_in(&app, &session).await);
    assert_eq!(
        cli_events(&app).await,
        [(
            "settings.sign_in".to_owned(),
            Some("instance".to_owned()),
            Some("local_login off -> on".to_owned())
        )]
    );

    let again = run(recover(&app, &["enable-local"]), None).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert!(again.stdout.contains("already on"), "{again:?}");
}

async fn reset_password_from_stdin_ends_sessions_and_the_new_password_works(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (session, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let version = user(&app, ADMIN).await.session_version;

    // The password rules are the same as everywhere: nothing changes.
    let short = run(
        recover(
            &app,
            &["reset-password", "--username", ADMIN, "--password-stdin"],
        ),
        Some("short\n"),
    )
    .await;
    assert_eq!(short.code, Some(2), "{short:?}");
    assert!(
        short
            .stderr
            .contains("Password must be at least 8 characters long."),
        "{short:?}"
    );
    assert!(!short.stderr.contains("short\n"));
    let unknown = run(
        recover(
            &app,
            &["reset-password", "--username", "nobody", "--password-stdin"],
        ),
        Some("long enough password\n"),
    )
    .await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(
        unknown.stderr.contains("no account named \"nobody\""),
        "{unknown:?}"
    );
    assert!(signed_in(&app, &session).await);

    // One line, its newline trimmed (and nothing else: the spaces are part of it).
    let ran = run(
        recover(
            &app,
            &["reset-password", "--username", "ADMIN", "--password-stdin"],
        ),
        Some("  a brand new password \r\n"),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("New password set for \"admin\""),
        "{ran:?}"
    );
    assert_eq!(user(&app, ADMIN).await.session_version, version + 1);
    assert!(!signed_in(&app, &session).await, "the old session ended");
    assert_eq!(password_login(&app, ADMIN, ADMIN_PASSWORD).await, 401);
    assert_eq!(
        password_login(&app, ADMIN, "a brand new password").await,
        401
    );
    assert_eq!(
        password_login(&app, ADMIN, "  a brand new password ").await,
        200
    );
    assert_eq!(
        cli_events(&app).await,
        [(
            "user.password_reset".to_owned(),
            Some(ADMIN.to_owned()),
            None
        )]
    );
}

async fn create_admin_makes_an_active_admin_who_can_sign_in(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let ran = run(
        recover(
            &app,
            &[
                "create-admin",
                "--username",
                "rescue",
                "--email",
                "rescue@example.com",
                "--password-stdin",
            ],
        ),
        Some("rescue password 1\n"),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(
        ran.stdout.contains("Created \"rescue\", an active admin."),
        "{ran:?}"
    );
    let (client, _) = api_login(&app, "rescue@example.com", "rescue password 1").await;
    let me: serde_json::Value = client
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("rescue"), Some("admin")),
        "{me}"
    );
    let r = client
        .get(app.url("/api/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the new admin administers");
    assert_eq!(
        cli_events(&app).await,
        [(
            "user.create".to_owned(),
            Some("rescue".to_owned()),
            Some("role=admin".to_owned())
        )]
    );

    // A name (or email) that is taken is refused, and nothing changes.
    for (args, expect) in [
        (
            ["--username", "Rescue", "--email", "other@example.com"],
            "an account named \"rescue\" already exists",
        ),
        (
            ["--username", "other", "--email", "RESCUE@example.com"],
            "Another account already uses this email.",
        ),
    ] {
        let mut all = vec!["create-admin", "--password-stdin"];
        all.extend(args);
        let again = run(recover(&app, &all), Some("another password 1\n")).await;
        assert_eq!(again.code, Some(1), "{again:?}");
        assert!(again.stderr.contains(expect), "{again:?}");
    }
    let bad = run(
        recover(
            &app,
            &["create-admin", "--username", "no way", "--password-stdin"],
        ),
        Some("another password 1\n"),
    )
    .await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("--username: Username may contain only"));
    assert_eq!(cli_events(&app).await.len(), 1);
}

async fn disable_and_delete_end_sessions_and_are_audited(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    create_user(&app, "carol", "user").await;
    create_user(&app, "dave", "viewer").await;
    let (carol, _) = api_login(&app, "carol", "carol password 123").await;
    let (dave, _) = api_login(&app, "dave", "dave password 123").await;
    let (cv, dv) = (
        user(&app, "carol").await.session_version,
        user(&app, "dave").await.session_version,
    );

    let ran = run(
        recover(&app, &["disable-user", "--username", "carol", "--force"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("\"carol\" is disabled"), "{ran:?}");
    let c = user(&app, "carol").await;
    assert_eq!(c.status.as_str(), "disabled");
    assert_eq!(c.session_version, cv + 1);
    assert!(!signed_in(&app, &carol).await);
    assert_eq!(
        password_login(&app, "carol", "carol password 123").await,
        401
    );
    assert!(signed_in(&app, &dave).await, "only carol was touched");

    let ran = run(
        recover(&app, &["delete-user", "--username", "dave", "--force"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("\"dave\" is deleted"), "{ran:?}");
    let d = user(&app, "dave").await;
    assert!(d.deleted_at.is_some());
    assert_eq!(d.session_version, dv + 1);
    assert!(!signed_in(&app, &dave).await);

    let unknown = run(
        recover(&app, &["delete-user", "--username", "erin", "--force"]),
        None,
    )
    .await;
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("no account named \"erin\""));

    let events = cli_events(&app).await;
    assert_eq!(
        events,
        [
            (
                "user.delete".to_owned(),
                Some("dave".to_owned()),
                Some("status active -> disabled".to_owned())
            ),
            (
                "user.disable".to_owned(),
                Some("carol".to_owned()),
                Some("status active -> disabled".to_owned())
            ),
        ]
    );
}

async fn the_last_active_admin_is_never_disabled_or_deleted(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (session, _) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let version = user(&app, ADMIN).await.session_version;
    for cmd in ["disable-user", "delete-user"] {
        let ran = run(recover(&app, &[cmd, "--username", ADMIN, "--force"]), None).await;
        assert_eq!(ran.code, Some(2), "{cmd}: {ran:?}");
        assert!(
            ran.stderr.contains("\"admin\" is the last active admin")
                && ran
                    .stderr
                    .contains("hallpass recover create-admin --username NEW_NAME"),
            "{cmd}: {}",
            ran.stderr
        );
    }
    let a = user(&app, ADMIN).await;
    assert!(a.is_active_admin());
    assert_eq!(a.session_version, version, "a refusal changes nothing");
    assert!(signed_in(&app, &session).await);
    assert!(cli_events(&app).await.is_empty());

    // With a second admin, the first may go.
    let ran = run(
        recover(
            &app,
            &["create-admin", "--username", "second", "--password-stdin"],
        ),
        Some("second admin password\n"),
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let ran = run(
        recover(&app, &["disable-user", "--username", ADMIN, "--force"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(!signed_in(&app, &session).await);
    // And now "second" is the last one.
    let ran = run(
        recover(&app, &["delete-user", "--username", "second", "--force"]),
        None,
    )
    .await;
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(user(&app, "second").await.is_active_admin());
}

async fn without_a_terminal_nothing_is_asked_and_nothing_changes(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let bob = create_user(&app, "bob", "user").await;
    stored_provider_and_link(&app, "keycloak", bob.id, "bob-sub").await;
    for (args, expect) in [
        (vec!["wipe-sso"], "add --force"),
        (vec!["disable-user", "--username", "bob"], "add --force"),
        (vec!["delete-user", "--username", "bob"], "add --force"),
        (
            vec!["reset-password", "--username", "bob"],
            "--password-stdin",
        ),
        (
            vec!["create-admin", "--username", "eve"],
            "--password-stdin",
        ),
    ] {
        let ran = run(recover(&app, &args), None).await;
        assert_eq!(ran.code, Some(2), "{args:?}: {ran:?}");
        assert!(
            ran.stderr.contains("stdin is not a terminal") && ran.stderr.contains(expect),
            "{args:?}: {}",
            ran.stderr
        );
    }
    // Piped input is not a terminal either: no confirmation is read from it.
    let ran = run(
        recover(&app, &["disable-user", "--username", "bob"]),
        Some("bob\n"),
    )
    .await;
    assert_eq!(ran.code, Some(2), "{ran:?}");
    let b = user(&app, "bob").await;
    assert_eq!(
        (b.status.as_str(), b.session_version),
        ("active", bob.session_version)
    );
    let links = app.state.db.run(identities::all).await.unwrap();
    assert_eq!(links.len(), 1);
    assert!(cli_events(&app).await.is_empty());
}

async fn on_a_terminal_passwords_are_hidden_and_changes_confirmed(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    create_user(&app, "bob", "user").await;
    let (bob_session, _) = api_login(&app, "bob", "bob password 123").await;

    // Asked twice; the two must match.
    let (code, shown) = on_terminal(
        recover(&app, &["reset-password", "--username", "bob"]),
        &[
            ("New password for bob:", "first typed password"),
            ("Type it again:", "second typed password"),
        ],
    )
    .await;
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("The two passwords do not match."), "{shown}");
    assert!(signed_in(&app, &bob_session).await);

    let (code, shown) = on_terminal(
        recover(&app, &["reset-password", "--username", "bob"]),
        &[
            ("New password for bob:", "typed on the terminal"),
            ("Type it again:", "typed on the terminal"),
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("typed on the terminal"), "echoed: {shown}");
    assert!(!signed_in(&app, &bob_session).await);
    assert_eq!(
        password_login(&app, "bob", "typed on the terminal").await,
        200
    );

    // Destructive commands ask for the username; anything else cancels.
    let (code, shown) = on_terminal(
        recover(&app, &["disable-user", "--username", "bob"]),
        &[("Type bob to confirm:", "yes")],
    )
    .await;
    assert_eq!(code, Some(2), "{shown}");
    assert!(
        shown.contains("not confirmed: nothing was changed"),
        "{shown}"
    );
    assert_eq!(user(&app, "bob").await.status.as_str(), "active");
    let (code, shown) = on_terminal(
        recover(&app, &["disable-user", "--username", "bob"]),
        &[("Type bob to confirm:", "bob")],
    )
    .await;
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(user(&app, "bob").await.status.as_str(), "disabled");

    let (code, shown) = on_terminal(
        recover(&app, &["wipe-sso"]),
        &[("Type wipe-sso to confirm:", "wipe-sso")],
    )
    .await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.contains("SSO login is off"), "{shown}");
    let actions: Vec<String> = cli_events(&app).await.into_iter().map(|e| e.0).collect();
    assert_eq!(actions, ["sso.wipe", "user.disable", "user.password_reset"]);
}
