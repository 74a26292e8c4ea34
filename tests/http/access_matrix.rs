//! Every route × every kind of caller, with the expected answer. The route list is read from
//! `src/web/mod.rs`, so adding a route without adding it here fails the test.

use std::collections::BTreeSet;

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, csrf_in, sql, user};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Pending,
    Rejected,
    Disabled,
    Viewer,
    User,
    Admin,
    /// Right password, second factor not entered yet: must be an anonymous visitor
    /// everywhere (issue 14).
    HalfSignedIn,
    /// `Authorization: Bearer` with a viewer's key (no cookie).
    ViewerKey,
    /// `Authorization: Bearer` with an admin's key (no cookie).
    AdminKey,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::HalfSignedIn,
    Caller::Pending,
    Caller::Rejected,
    Caller::Disabled,
    Caller::Viewer,
    Caller::User,
    Caller::Admin,
    Caller::ViewerKey,
    Caller::AdminKey,
];

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone, even outside the session layer (health, static files).
    Open,
    /// Anyone with a session or none; pending/rejected accounts see their status page.
    Public,
    /// A signed-in, active account.
    SignedIn,
    /// An active admin.
    Admin,
    /// Sign-out: anyone signed in, whatever their status.
    SignOut,
    /// Forward-auth for another app (asked about `matrix.example.com`, open to any active
    /// account) by a script: 200 for active accounts and keys, 403 for pending and rejected
    /// ones, 401 for anonymous.
    Forward,
    /// `GET /metrics` (enabled, with a token, for this test): 401 for every caller, since
    /// neither a session nor an API key is the scrape token (`tests/http/metrics.rs` tests
    /// the token and the address list; an API key sent here counts as a wrong token, under
    /// the `metrics_token` limit, `tests/http/metrics_limit.rs`).
    Metrics,
}

/// (method, route pattern as written in the router, concrete path, access).
const MATRIX: &[(&str, &str, &str, Access)] = &[
    // Your sessions and lockouts (issue 14, points 4 and 5).
    (
        "GET",
        "/account/sessions",
        "/account/sessions",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/sessions/others/end",
        "/account/sessions/others/end",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/sessions/{id}/end",
        "/account/sessions/abc/end",
        Access::SignedIn,
    ),
    (
        "GET",
        "/admin/users/{id}/sessions",
        "/admin/users/TARGET/sessions",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/sessions/end-all",
        "/admin/users/TARGET/sessions/end-all",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/sessions/{session}/end",
        "/admin/users/TARGET/sessions/abc/end",
        Access::Admin,
    ),
    ("GET", "/admin/lockouts", "/admin/lockouts", Access::Admin),
    (
        "POST",
        "/admin/lockouts/{id}/lift",
        "/admin/lockouts/abc/lift",
        Access::Admin,
    ),
    (
        "GET",
        "/api/me/sessions",
        "/api/me/sessions",
        Access::SignedIn,
    ),
    (
        "DELETE",
        "/api/me/sessions/others",
        "/api/me/sessions/others",
        Access::SignedIn,
    ),
    (
        "DELETE",
        "/api/me/sessions/{id}",
        "/api/me/sessions/abc",
        Access::SignedIn,
    ),
    (
        "GET",
        "/api/admin/users/{id}/sessions",
        "/api/admin/users/TARGET/sessions",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/users/{id}/sessions",
        "/api/admin/users/TARGET/sessions",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/users/{id}/sessions/{session}",
        "/api/admin/users/TARGET/sessions/abc",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/lockouts",
        "/api/admin/lockouts",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/lockouts/{id}",
        "/api/admin/lockouts/abc",
        Access::Admin,
    ),
    ("GET", "/register", "/register", Access::Public),
    (
        "POST",
        "/api/me/password",
        "/api/me/password",
        Access::SignedIn,
    ),
    ("POST", "/register", "/register", Access::Public),
    ("GET", "/admin/audit", "/admin/audit", Access::Admin),
    ("GET", "/admin/apps", "/admin/apps", Access::Admin),
    ("POST", "/admin/apps", "/admin/apps", Access::Admin),
    ("GET", "/admin/apps/new", "/admin/apps/new", Access::Admin),
    (
        "GET",
        "/admin/apps/test",
        "/admin/apps/test?url=https%3A%2F%2Fa.example.com%2F",
        Access::Admin,
    ),
    ("GET", "/admin/apps/{id}", "/admin/apps/999", Access::Admin),
    ("POST", "/admin/apps/{id}", "/admin/apps/999", Access::Admin),
    (
        "GET",
        "/admin/apps/{id}/delete",
        "/admin/apps/999/delete",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/apps/{id}/delete",
        "/admin/apps/999/delete",
        Access::Admin,
    ),
    ("GET", "/api/admin/apps", "/api/admin/apps", Access::Admin),
    ("POST", "/api/admin/apps", "/api/admin/apps", Access::Admin),
    (
        "POST",
        "/api/admin/apps/test",
        "/api/admin/apps/test",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/apps/{id}",
        "/api/admin/apps/999",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/apps/{id}",
        "/api/admin/apps/999",
        Access::Admin,
    ),
    (
        "PATCH",
        "/api/admin/apps/{id}",
        "/api/admin/apps/999",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/apps/{id}",
        "/api/admin/apps/999",
        Access::Admin,
    ),
    // The SSO and proxy admin screens' JSON API (issue 16, point 4).
    (
        "GET",
        "/api/admin/sso/providers",
        "/api/admin/sso/providers",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/sso/providers",
        "/api/admin/sso/providers",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/sso/providers/{id}",
        "/api/admin/sso/providers/x",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/sso/providers/{id}",
        "/api/admin/sso/providers/x",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/sso/providers/{id}",
        "/api/admin/sso/providers/x",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/sso/providers/{id}/revert",
        "/api/admin/sso/providers/x/revert",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/sso/providers/{id}/enabled",
        "/api/admin/sso/providers/x/enabled",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/sso/providers/{id}/discovery",
        "/api/admin/sso/providers/x/discovery",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/sso/discovery",
        "/api/admin/sso/discovery",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/sso/modes",
        "/api/admin/sso/modes",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/sso/modes",
        "/api/admin/sso/modes",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/sso/providers/{id}/links",
        "/api/admin/sso/providers/x/links",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/sso/providers/{id}/links",
        "/api/admin/sso/providers/x/links",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/sso/identities/{id}",
        "/api/admin/sso/identities/999",
        Access::Admin,
    ),
    ("GET", "/api/admin/proxy", "/api/admin/proxy", Access::Admin),
    (
        "PUT",
        "/api/admin/proxy/preset",
        "/api/admin/proxy/preset",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/proxy/preset/revert",
        "/api/admin/proxy/preset/revert",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/proxy/links",
        "/api/admin/proxy/links",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/proxy/links",
        "/api/admin/proxy/links",
        Access::Admin,
    ),
    ("GET", "/admin/sso", "/admin/sso", Access::Admin),
    ("GET", "/admin/proxy", "/admin/proxy", Access::Admin),
    ("POST", "/admin/proxy", "/admin/proxy", Access::Admin),
    (
        "GET",
        "/admin/diagnostics",
        "/admin/diagnostics",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/proxy/links",
        "/admin/proxy/links",
        Access::Admin,
    ),
    (
        "POST",
        "/account/identities/{provider}/link",
        "/account/identities/x/link",
        Access::SignedIn,
    ),
    (
        "GET",
        "/account/identities/{id}/unlink",
        "/account/identities/999/unlink",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/identities/{id}/unlink",
        "/account/identities/999/unlink",
        Access::SignedIn,
    ),
    (
        "POST",
        "/admin/sso/modes",
        "/admin/sso/modes",
        Access::Admin,
    ),
    ("GET", "/admin/sso/new", "/admin/sso/new", Access::Admin),
    ("POST", "/admin/sso/new", "/admin/sso/new", Access::Admin),
    (
        "GET",
        "/admin/sso/providers/{id}",
        "/admin/sso/providers/x",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}",
        "/admin/sso/providers/x",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/sso/providers/{id}/links",
        "/admin/sso/providers/x/links",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}/links",
        "/admin/sso/providers/x/links",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}/verify",
        "/admin/sso/providers/x/verify",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}/enabled",
        "/admin/sso/providers/x/enabled",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/sso/providers/{id}/revert",
        "/admin/sso/providers/x/revert",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}/revert",
        "/admin/sso/providers/x/revert",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/sso/providers/{id}/delete",
        "/admin/sso/providers/x/delete",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/providers/{id}/delete",
        "/admin/sso/providers/x/delete",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/sso/identities/{id}/unlink",
        "/admin/sso/identities/999/unlink",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/sso/identities/{id}/unlink",
        "/admin/sso/identities/999/unlink",
        Access::Admin,
    ),
    (
        "GET",
        "/api/auth/oidc/{provider}/login",
        "/api/auth/oidc/x/login",
        Access::Public,
    ),
    (
        "GET",
        "/api/auth/oidc/{provider}/callback",
        "/api/auth/oidc/x/callback",
        Access::Public,
    ),
    ("GET", "/admin/settings", "/admin/settings", Access::Admin),
    ("POST", "/admin/settings", "/admin/settings", Access::Admin),
    ("GET", "/api/admin/audit", "/api/admin/audit", Access::Admin),
    (
        "GET",
        "/api/admin/settings",
        "/api/admin/settings",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/settings",
        "/api/admin/settings",
        Access::Admin,
    ),
    ("GET", "/healthz", "/healthz", Access::Open),
    ("GET", "/metrics", "/metrics", Access::Metrics),
    (
        "ANY",
        "/api/authz/forward-auth",
        "/api/authz/forward-auth",
        Access::Forward,
    ),
    (
        "ANY",
        "/api/authz/auth-request",
        "/api/authz/auth-request",
        Access::Forward,
    ),
    ("GET", "/readyz", "/readyz", Access::Open),
    (
        "GET",
        "/api/openapi.json",
        "/api/openapi.json",
        Access::Open,
    ),
    ("GET", "/static/{*path}", "/static/style.css", Access::Open),
    ("GET", "/", "/", Access::SignedIn),
    ("GET", "/setup", "/setup", Access::Public),
    ("POST", "/setup", "/setup", Access::Public),
    // Answers 404 once an account exists (tests/http/backup.rs).
    ("POST", "/setup/restore", "/setup/restore", Access::Public),
    ("GET", "/login", "/login", Access::Public),
    ("POST", "/login", "/login", Access::Public),
    (
        "GET",
        "/login/two-factor",
        "/login/two-factor",
        Access::Public,
    ),
    (
        "POST",
        "/login/two-factor",
        "/login/two-factor",
        Access::Public,
    ),
    (
        "GET",
        "/login/two-factor/setup",
        "/login/two-factor/setup",
        Access::Public,
    ),
    (
        "POST",
        "/login/two-factor/setup",
        "/login/two-factor/setup",
        Access::Public,
    ),
    // Passkeys (issue 15).
    ("POST", "/login/passkey", "/login/passkey", Access::Public),
    (
        "POST",
        "/login/passkey/options",
        "/login/passkey/options",
        Access::Public,
    ),
    (
        "POST",
        "/login/two-factor/passkey",
        "/login/two-factor/passkey",
        Access::Public,
    ),
    (
        "POST",
        "/login/two-factor/passkey/options",
        "/login/two-factor/passkey/options",
        Access::Public,
    ),
    (
        "GET",
        "/account/passkeys",
        "/account/passkeys",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/passkeys",
        "/account/passkeys",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/passkeys/options",
        "/account/passkeys/options",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/passkeys/{id}/rename",
        "/account/passkeys/abc/rename",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/passkeys/{id}/remove",
        "/account/passkeys/abc/remove",
        Access::SignedIn,
    ),
    (
        "GET",
        "/api/me/passkeys",
        "/api/me/passkeys",
        Access::SignedIn,
    ),
    (
        "PATCH",
        "/api/me/passkeys/{id}",
        "/api/me/passkeys/abc",
        Access::SignedIn,
    ),
    (
        "DELETE",
        "/api/me/passkeys/{id}",
        "/api/me/passkeys/abc",
        Access::SignedIn,
    ),
    (
        "GET",
        "/account/two-factor",
        "/account/two-factor",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/two-factor/start",
        "/account/two-factor/start",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/two-factor/confirm",
        "/account/two-factor/confirm",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/two-factor/disable",
        "/account/two-factor/disable",
        Access::SignedIn,
    ),
    (
        "GET",
        "/admin/users/{id}/two-factor",
        "/admin/users/TARGET/two-factor",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/two-factor/reset",
        "/admin/users/TARGET/two-factor/reset",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/settings/two-factor",
        "/admin/settings/two-factor",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/users/{id}/two-factor",
        "/api/admin/users/TARGET/two-factor",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/settings/two-factor",
        "/api/admin/settings/two-factor",
        Access::Admin,
    ),
    (
        "PUT",
        "/api/admin/settings/two-factor",
        "/api/admin/settings/two-factor",
        Access::Admin,
    ),
    (
        "POST",
        "/api/auth/login/second-factor",
        "/api/auth/login/second-factor",
        Access::Public,
    ),
    ("GET", "/account", "/account", Access::SignedIn),
    (
        "POST",
        "/account/api-keys",
        "/account/api-keys",
        Access::SignedIn,
    ),
    (
        "GET",
        "/account/api-keys/{id}/revoke",
        "/account/api-keys/KEY/revoke",
        Access::SignedIn,
    ),
    (
        "POST",
        "/account/api-keys/{id}/revoke",
        "/account/api-keys/KEY/revoke",
        Access::SignedIn,
    ),
    (
        "GET",
        "/api/me/api-keys",
        "/api/me/api-keys",
        Access::SignedIn,
    ),
    (
        "POST",
        "/api/me/api-keys",
        "/api/me/api-keys",
        Access::SignedIn,
    ),
    (
        "DELETE",
        "/api/me/api-keys/{id}",
        "/api/me/api-keys/KEY",
        Access::SignedIn,
    ),
    (
        "GET",
        "/api/admin/users/{id}/api-keys",
        "/api/admin/users/TARGET/api-keys",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/api-keys/{id}",
        "/api/admin/api-keys/KEY",
        Access::Admin,
    ),
    (
        "POST",
        "/account/password",
        "/account/password",
        Access::SignedIn,
    ),
    ("GET", "/admin/users", "/admin/users", Access::Admin),
    ("POST", "/admin/users", "/admin/users", Access::Admin),
    ("GET", "/admin/users/new", "/admin/users/new", Access::Admin),
    (
        "POST",
        "/admin/users/{id}",
        "/admin/users/TARGET",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/users/{id}/edit",
        "/admin/users/TARGET/edit",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/users/{id}/row",
        "/admin/users/TARGET/row",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/password",
        "/admin/users/TARGET/password",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/users/{id}/purge",
        "/admin/users/TARGET/purge",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/purge",
        "/admin/users/TARGET/purge",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/users/{id}/confirm/{action}",
        "/admin/users/TARGET/confirm/disable",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/{action}",
        "/admin/users/TARGET/enable",
        Access::Admin,
    ),
    ("POST", "/api/auth/login", "/api/auth/login", Access::Public),
    ("GET", "/api/auth/me", "/api/auth/me", Access::SignedIn),
    ("GET", "/api/admin/users", "/api/admin/users", Access::Admin),
    (
        "POST",
        "/api/admin/users",
        "/api/admin/users",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/users/{id}",
        "/api/admin/users/TARGET",
        Access::Admin,
    ),
    (
        "PATCH",
        "/api/admin/users/{id}",
        "/api/admin/users/TARGET",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/users/{id}",
        "/api/admin/users/TARGET",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/users/{id}/{action}",
        "/api/admin/users/TARGET/restore",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/users/{id}/groups",
        "/admin/users/TARGET/groups",
        Access::Admin,
    ),
    ("GET", "/admin/groups", "/admin/groups", Access::Admin),
    ("POST", "/admin/groups", "/admin/groups", Access::Admin),
    (
        "GET",
        "/admin/groups/{id}",
        "/admin/groups/999",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/groups/{id}",
        "/admin/groups/999",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/groups/{id}/members",
        "/admin/groups/999/members",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/groups/{id}/members/{user_id}/remove",
        "/admin/groups/999/members/TARGET/remove",
        Access::Admin,
    ),
    (
        "GET",
        "/admin/groups/{id}/delete",
        "/admin/groups/999/delete",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/groups/{id}/delete",
        "/admin/groups/999/delete",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/groups",
        "/api/admin/groups",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/groups",
        "/api/admin/groups",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/groups/{id}",
        "/api/admin/groups/999",
        Access::Admin,
    ),
    (
        "PATCH",
        "/api/admin/groups/{id}",
        "/api/admin/groups/999",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/groups/{id}",
        "/api/admin/groups/999",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/groups/{id}/members",
        "/api/admin/groups/999/members",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/groups/{id}/members",
        "/api/admin/groups/999/members",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/groups/{id}/members/{user_id}",
        "/api/admin/groups/999/members/TARGET",
        Access::Admin,
    ),
    // Invite links (issue 15, point 3). The sign-up page is public: an unknown link
    // answers 404 to every caller allowed to see it.
    ("GET", "/admin/invites", "/admin/invites", Access::Admin),
    ("POST", "/admin/invites", "/admin/invites", Access::Admin),
    (
        "GET",
        "/admin/invites/{id}/revoke",
        "/admin/invites/999/revoke",
        Access::Admin,
    ),
    (
        "POST",
        "/admin/invites/{id}/revoke",
        "/admin/invites/999/revoke",
        Access::Admin,
    ),
    (
        "GET",
        "/invite/{token}",
        "/invite/hpi_unknown",
        Access::Public,
    ),
    (
        "POST",
        "/invite/{token}",
        "/invite/hpi_unknown",
        Access::Public,
    ),
    (
        "POST",
        "/invite/{token}/passkey/options",
        "/invite/hpi_unknown/passkey/options",
        Access::Public,
    ),
    (
        "POST",
        "/invite/{token}/passkey",
        "/invite/hpi_unknown/passkey",
        Access::Public,
    ),
    (
        "GET",
        "/api/admin/invites",
        "/api/admin/invites",
        Access::Admin,
    ),
    (
        "POST",
        "/api/admin/invites",
        "/api/admin/invites",
        Access::Admin,
    ),
    (
        "GET",
        "/api/admin/invites/{id}",
        "/api/admin/invites/999",
        Access::Admin,
    ),
    (
        "DELETE",
        "/api/admin/invites/{id}",
        "/api/admin/invites/999",
        Access::Admin,
    ),
    // Last: they end the caller's session.
    ("POST", "/logout", "/logout", Access::SignOut),
    (
        "POST",
        "/api/auth/logout",
        "/api/auth/logout",
        Access::SignOut,
    ),
];

/// `(METHOD, pattern)` of every `.route(...)` in the router source.
fn routes_in_router() -> BTreeSet<(String, String)> {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/mod.rs")).unwrap();
    let mut found = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        let call = &chunk[..chunk.find("))").map_or(chunk.len(), |i| i + 2)];
        for m in ["get", "post", "put", "patch", "delete", "any"] {
            if call.contains(&format!("{m}(")) {
                found.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn every_route_is_in_the_matrix() {
    let in_matrix: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let routed = routes_in_router();
    let missing: Vec<_> = routed.difference(&in_matrix).collect();
    assert!(
        missing.is_empty(),
        "routes without an access-matrix entry: {missing:?}"
    );
    let stale: Vec<_> = in_matrix.difference(&routed).collect();
    assert!(
        stale.is_empty(),
        "matrix entries for routes that do not exist: {stale:?}"
    );
}

/// The expected answer; `None` means "allowed" (anything but 401/403 or a sign-in redirect).
fn expected(access: Access, caller: Caller, api: bool, write: bool) -> Option<u16> {
    if access == Access::Metrics {
        return Some(401);
    }
    if caller == Caller::HalfSignedIn {
        // The password was right, the code not entered: nobody is signed in yet.
        return expected(access, Caller::Anonymous, api, write);
    }
    if access == Access::Forward {
        return Some(match caller {
            // The disabled caller's session was ended by the routes asked before (a
            // still-live session of a disabled account gets 403: `forward_auth` tests it).
            Caller::Anonymous | Caller::Disabled => 401,
            Caller::Pending | Caller::Rejected => 403,
            _ => 200,
        });
    }
    let key = matches!(caller, Caller::ViewerKey | Caller::AdminKey);
    if key && !api {
        // Keys are for the API only: on pages a key holder is an anonymous visitor.
        return expected(access, Caller::Anonymous, api, write);
    }
    if caller == Caller::ViewerKey && write && access != Access::Open {
        return Some(403); // WRITE_ACCESS_REQUIRED: a viewer's key is read-only
    }
    let caller = match caller {
        Caller::ViewerKey => Caller::Viewer,
        Caller::AdminKey => Caller::Admin,
        other => other,
    };
    let anonymous = matches!(caller, Caller::Anonymous | Caller::Disabled);
    let status_page = matches!(caller, Caller::Pending | Caller::Rejected);
    let login = if api { 401 } else { 303 };
    match access {
        Access::Open | Access::Forward | Access::Metrics => None,
        Access::SignOut if anonymous => Some(login),
        Access::SignOut => None,
        _ if status_page => Some(403),
        Access::Public => None,
        Access::SignedIn if anonymous => Some(login),
        Access::SignedIn => None,
        Access::Admin if anonymous => Some(login),
        Access::Admin if caller == Caller::Admin => None,
        Access::Admin => Some(403),
    }
}

async fn session_for(app: &TestApp, caller: Caller) -> reqwest::Client {
    let c = app.client();
    let name = match caller {
        Caller::Anonymous | Caller::ViewerKey | Caller::AdminKey => {
            // An anonymous visitor that loaded the sign-in form has a CSRF token.
            c.get(app.url("/login")).send().await.unwrap();
            return c;
        }
        Caller::Admin => ADMIN,
        Caller::Pending => "m-pending",
        Caller::Rejected => "m-rejected",
        Caller::Disabled => "m-disabled",
        Caller::Viewer => "m-viewer",
        Caller::User => "m-user",
        Caller::HalfSignedIn => "m-2fa",
    };
    let password = if caller == Caller::Admin {
        ADMIN_PASSWORD
    } else {
        "member password"
    };
    assert_eq!(
        app.login(&c, name, password).await.status(),
        303,
        "{caller:?} signs in"
    );
    c
}

both_databases!(every_route_answers_every_caller_as_expected);

async fn every_route_answers_every_caller_as_expected(db: Db) {
    use hallpass::service::admin::{InitialPassword, Profile, create_user};
    // `/metrics` on, behind a token nobody here sends.
    let metrics = |c: &mut hallpass::config::Config| {
        c.metrics.enabled = true;
        c.metrics.token = Some(hallpass::config::MetricsToken::new(
            "matrix-scrape-token-0123456789".into(),
        ));
    };
    let Some(app) = TestApp::start(db, metrics, true).await else {
        return;
    };
    for (name, role) in [
        ("m-pending", "user"),
        ("m-rejected", "user"),
        ("m-disabled", "user"),
        ("m-viewer", "viewer"),
        ("m-user", "user"),
        ("m-target", "user"),
        ("m-2fa", "admin"),
    ] {
        create_user(
            &app.state.db,
            &app.state.hasher,
            hallpass::service::Actor::system("test"),
            Profile::parse(name, "", "", role).unwrap(),
            InitialPassword::Given(hallpass::domain::Password::parse("member password").unwrap()),
        )
        .await
        .unwrap();
    }
    sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username_key = 'm-pending'",
    )
    .await;
    sql(
        &app,
        "UPDATE users SET status = 'rejected' WHERE username_key = 'm-rejected'",
    )
    .await;
    let target = user(&app, "m-target").await.id.to_string();
    // m-2fa (an admin, so every admin route is tried) has a second factor: its password
    // alone leaves it half signed in.
    let m2fa = user(&app, "m-2fa").await;
    let started = hallpass::service::two_factor::start(&app.state.db, &app.state.secret, &m2fa)
        .await
        .unwrap();
    hallpass::service::two_factor::confirm(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        &m2fa,
        &crate::two_factor::code_at(&started.secret, crate::two_factor::now()),
    )
    .await
    .unwrap();
    add_signed_in_app(&app, "matrix.example.com").await;
    // Keys for the Bearer callers, and one more key of the target's for the key routes.
    let mut keys = std::collections::HashMap::new();
    for (owner, caller) in [
        ("m-viewer", Some(Caller::ViewerKey)),
        (ADMIN, Some(Caller::AdminKey)),
        ("m-target", None),
    ] {
        let owner = user(&app, owner).await;
        let created = hallpass::service::api_keys::create(
            &app.state.db,
            &app.state.secret,
            hallpass::service::Actor::system("test"),
            &owner,
            hallpass::domain::NewApiKey::parse("matrix", None).unwrap(),
        )
        .await
        .unwrap();
        match caller {
            Some(c) => keys.insert(format!("{c:?}"), created.secret),
            None => keys.insert("target-key-id".into(), created.key.id.to_string()),
        };
    }
    let key_id = keys["target-key-id"].clone();

    let mut failures = Vec::new();
    for caller in CALLERS {
        let c = session_for(&app, caller).await;
        if caller == Caller::Disabled {
            // Signed in, then disabled: the session must stop working at once.
            sql(
                &app,
                "UPDATE users SET status = 'disabled' WHERE username_key = 'm-disabled'",
            )
            .await;
        }
        // A token from whatever page this caller can load (the status page carries one too).
        let page = c
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let page = if csrf_in(&page).is_some() {
            page
        } else {
            c.get(app.url("/account"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let token = csrf_in(&page).unwrap_or_default();
        for (method, _, path, access) in MATRIX {
            // Each sign-out gets its own fresh session (the previous one ended the last).
            let (c, token) = if *access == Access::SignOut {
                let fresh = match caller {
                    Caller::Disabled => session_for(&app, Caller::Anonymous).await,
                    other => session_for(&app, other).await,
                };
                let page = fresh
                    .get(app.url("/login"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let page = if csrf_in(&page).is_some() {
                    page
                } else {
                    fresh
                        .get(app.url("/account"))
                        .send()
                        .await
                        .unwrap()
                        .text()
                        .await
                        .unwrap()
                };
                let token = csrf_in(&page).unwrap_or_default();
                (fresh, token)
            } else {
                (c.clone(), token.clone())
            };
            let path = path.replace("TARGET", &target).replace("KEY", &key_id);
            let api = path.starts_with("/api/");
            let req = match *method {
                // Forward-auth, asked about a page of another app by a script (no redirect).
                "ANY" => c
                    .get(app.url(&path))
                    .header("Accept", "application/json")
                    .header("X-Forwarded-Method", "GET")
                    .header("X-Forwarded-Proto", "https")
                    .header("X-Forwarded-Host", "matrix.example.com")
                    .header("X-Forwarded-Uri", "/page")
                    .header("X-Original-Method", "GET")
                    .header("X-Original-URL", "https://matrix.example.com/page"),
                "GET" => c.get(app.url(&path)),
                "POST" => c.post(app.url(&path)),
                "PATCH" => c.patch(app.url(&path)),
                "PUT" => c.put(app.url(&path)),
                "DELETE" => c.delete(app.url(&path)),
                other => panic!("method {other}"),
            };
            let req = req.header("X-CSRF-Token", &token);
            let req = match keys.get(&format!("{caller:?}")) {
                Some(k) => req.header("Authorization", format!("Bearer {k}")),
                None => req,
            };
            let req = if api && *method != "GET" {
                req.json(&serde_json::json!({}))
            } else if *method != "GET" {
                req.form(&[("csrf_token", token.as_str())])
            } else {
                req
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let write = *method != "GET";
            let ok = match expected(*access, caller, api, write) {
                Some(303) => status == 303 && location.starts_with("/login"),
                Some(code) => status == code,
                None => {
                    !(status == 401
                        || status == 403
                        || (status == 303 && location.starts_with("/login?next")))
                }
            };
            if !ok {
                failures.push(format!(
                    "{caller:?} {method} {path}: got {status} {location}, expected {:?}",
                    expected(*access, caller, api, write)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access matrix mismatches:\n{}",
        failures.join("\n")
    );
}

/// An app at `host` open to any active account.
async fn add_signed_in_app(app: &TestApp, host: &str) {
    use hallpass::domain::apps::{Access, AppSource, HostPattern};
    let hosts = vec![HostPattern::parse(host).unwrap()];
    app.state
        .db
        .run(move |c| {
            hallpass::db::apps::insert(
                c,
                &hallpass::db::apps::AppWrite {
                    name: "Matrix",
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
