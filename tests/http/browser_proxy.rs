//! The forward-auth pages in a real headless Chromium: /admin/proxy (settings in force,
//! header presets, linking a proxy user) and /admin/diagnostics. The SQLite variant writes
//! the screenshots of `docs/screens.md` and `docs/proxy.md`.

use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql};

both_databases!(browser_proxy_settings_and_diagnostics);

async fn browser_proxy_settings_and_diagnostics(db: Db) {
    let Some(app) = TestApp::start(
        db,
        |c| {
            c.auth.proxy.enabled = true;
            c.auth.proxy.trusted_proxies = vec!["172.18.0.0/16".into()];
            c.auth.proxy.admin_groups = vec!["admins".into()];
            c.auth.proxy.viewer_groups = vec!["family".into()];
        },
        true,
    )
    .await
    else {
        return;
    };
    let Some(b) = Browser::start(&app, Options::for_db(db)).await else {
        return;
    };
    b.goto("/login?next=/admin/proxy").await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/admin/proxy").await;
    // Choose the Authentik preset; the headers in use follow.
    b.click("#preset-authentik").await;
    b.click("#save-preset").await;
    b.wait_for_path("/admin/proxy?saved=1").await;
    let headers = b.text("#headers-in-use").await;
    assert!(headers.contains("X-authentik-username"), "{headers}");
    // Link the proxy user "alice" to the admin account.
    b.fill("#proxy_user", "alice").await;
    b.fill("#link-username", ADMIN).await;
    b.click("#link-proxy-user").await;
    b.wait_for_path("/admin/proxy?saved=1").await;
    let table = b.text("#proxy-links-table").await;
    assert!(table.contains("alice") && table.contains(ADMIN), "{table}");
    // Fixed dates, so the picture only changes when the page does.
    sql(
        &app,
        "UPDATE identities SET created_at = 1795000000, last_login_at = NULL",
    )
    .await;
    b.goto("/admin/proxy").await;
    b.screenshot("proxy").await;
    // Diagnostics: the browser is not the proxy, so its headers are shown as ignored.
    b.goto("/admin/diagnostics").await;
    let proxy = b.text("#diag-proxy").await;
    assert!(proxy.contains("not trusted"), "{proxy}");
    let peer = b.text("#diag-peer").await;
    assert!(peer.starts_with("127.0.0.1:"), "{peer}");
    // The peer's and the app's ports are random: show fixed ones in the picture.
    b.js(&format!(
        "const fix = t => t.split('127.0.0.1:{port}').join('127.0.0.1:8700');
         document.querySelector('#diag-peer code').textContent = '127.0.0.1:51234';
         document.querySelector('#diag-host').textContent = fix(document.querySelector('#diag-host').textContent);
         return null;",
        port = app.addr.port()
    ))
    .await;
    b.screenshot("diagnostics").await;
}
