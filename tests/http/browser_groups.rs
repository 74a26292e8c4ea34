//! `/admin/groups` in a real headless Chromium: with JavaScript (members added and removed
//! in place by htmx; the SQLite run writes the `groups` and `group` screenshots, light and
//! dark) and without (every form a plain POST, the delete confirmed on its own page).

use serde_json::json;

use crate::groups::account;
use crate::support::browser::{Browser, Options};
use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, sql};

both_databases!(
    browser_groups_with_javascript,
    browser_groups_without_javascript
);

async fn start(db: Db, options: Options) -> Option<(TestApp, Browser)> {
    let app = TestApp::with_admin(db).await?;
    let b = Browser::start(&app, options).await?;
    b.goto("/login?next=/admin/groups").await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/admin/groups").await;
    Some((app, b))
}

/// Creates a group through the form on `/admin/groups` (the browser must be on it); returns
/// its id, read from the page it lands on.
async fn create_group(b: &Browser, name: &str, description: &str) -> i64 {
    b.fill("#group-create #name", name).await;
    b.fill("#group-create #description", description).await;
    b.click("#create-group").await;
    b.wait_until(
        "the new group's page",
        &format!(
            "return document.querySelector('h1')?.textContent === {};",
            json!(name)
        ),
    )
    .await;
    let path = b.path().await;
    path.strip_prefix("/admin/groups/")
        .and_then(|p| p.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a group page: {path}"))
}

async fn browser_groups_with_javascript(db: Db) {
    let Some((app, b)) = start(db, Options::for_db(db)).await else {
        return;
    };
    let ada = account(&app, "ada", "user").await;
    let grace = account(&app, "grace", "user").await;
    account(&app, "linus", "viewer").await;
    sql(
        &app,
        "UPDATE users SET display_name = 'Ada Lovelace' WHERE username_key = 'ada'",
    )
    .await;
    sql(
        &app,
        "UPDATE users SET display_name = 'Grace Hopper' WHERE username_key = 'grace'",
    )
    .await;
    assert!(
        b.exists("#nav-groups").await,
        "the Groups link in the header"
    );
    assert!(b.exists("#no-groups").await);
    let family = create_group(&b, "Family", "Everyone at home").await;
    assert!(b.exists("#notice").await);

    // Adding and removing members swaps the member list only.
    b.js("window.hallpassNoReload = true; return null;").await;
    for name in ["ada", "grace", "linus"] {
        b.fill("#member-username", name).await;
        b.click("#add-member-button").await;
        b.wait_until(
            &format!("{name} in the member list"),
            &format!(
                "return Array.from(document.querySelectorAll('#members-table .username'), a => a.textContent).includes('{name}');"
            ),
        )
        .await;
    }
    let linus = crate::support::user(&app, "linus").await.id;
    b.click(&format!("#member-{linus} .remove")).await;
    b.wait_until(
        "linus removed",
        &format!("return document.getElementById('member-{linus}') === null;"),
    )
    .await;
    // A mistake is shown by the field, in place.
    b.fill("#member-username", "nobody").await;
    b.click("#add-member-button").await;
    b.wait_until(
        "the error by the field",
        "return document.getElementById('member-username-error')?.textContent === 'No account has this username.';",
    )
    .await;
    let state = b
        .js("return [window.hallpassNoReload === true, document.getElementById('member-username').value];")
        .await;
    assert_eq!(state, json!([true, "nobody"]), "no reload, input kept");
    assert_eq!(
        crate::groups::count(&app, "SELECT COUNT(*) AS n FROM group_members").await,
        2
    );

    // A second group, an app that names the first, and fixed dates for the pictures.
    b.goto("/admin/groups").await;
    create_group(&b, "Media", "Jellyfin and the *arr apps").await;
    sql(
        &app,
        "INSERT INTO apps (name, name_key, hosts, access, created_at, updated_at) VALUES ('Photos', 'photos', 'photos.example.com', 'restricted', 0, 0)",
    )
    .await;
    sql(
        &app,
        format!("INSERT INTO app_groups (app_id, group_id) SELECT id, {family} FROM apps"),
    )
    .await;
    sql(
        &app,
        "UPDATE groups SET created_at = 1793611800 + 3600 * id",
    )
    .await;
    sql(
        &app,
        format!(
            "UPDATE group_members SET created_at = 1793700000 + 60 * user_id WHERE user_id IN ({ada}, {grace})"
        ),
    )
    .await;
    b.goto(&format!("/admin/groups/{family}")).await;
    assert_eq!(
        b.text("#apps-naming").await,
        "1 app names this group: Photos."
    );
    b.screenshot("group").await;
    b.goto("/admin/groups").await;
    let rows = b
        .js("return Array.from(document.querySelectorAll('#groups-table tbody tr'), r => [r.querySelector('.group-name').textContent, r.querySelector('.members').textContent]);")
        .await;
    assert_eq!(rows, json!([["Family", "2"], ["Media", "0"]]));
    b.screenshot("groups").await;

    // The member count leads to the user table filtered by the group.
    b.click(&format!("#group-{family} .members")).await;
    b.wait_for_path(&format!("/admin/users?group={family}"))
        .await;
    let names = b
        .js("return Array.from(document.querySelectorAll('#user-table .username'), a => a.textContent);")
        .await;
    assert_eq!(names, json!(["ada", "grace"]));
    assert_eq!(b.value("#group-filter").await, family.to_string());
}

async fn browser_groups_without_javascript(db: Db) {
    let options = Options::for_db(db).without_javascript().no_screenshots();
    let Some((app, b)) = start(db, options).await else {
        return;
    };
    let ada = account(&app, "ada", "user").await;
    // A mistake: the message by the field, what was typed kept.
    b.fill("#group-create #name", "a,b").await;
    b.fill("#group-create #description", "kept").await;
    b.click("#create-group").await;
    b.wait_until(
        "the error by the name",
        "return document.getElementById('name-error') !== null;",
    )
    .await;
    assert_eq!(b.value("#group-create #description").await, "kept");
    let id = create_group(&b, "Family", "").await;

    b.fill("#member-username", "ada").await;
    b.click("#add-member-button").await;
    b.wait_for_path(&format!("/admin/groups/{id}?notice=member_added"))
        .await;
    assert!(b.exists(&format!("#member-{ada}")).await);
    b.click(&format!("#member-{ada} .remove")).await;
    b.wait_for_path(&format!("/admin/groups/{id}?notice=member_removed"))
        .await;
    assert!(b.exists("#no-members").await);

    // Rename.
    b.fill("#group-edit #name", "Household").await;
    b.click("#save-group").await;
    b.wait_for_path(&format!("/admin/groups/{id}?notice=saved"))
        .await;
    assert_eq!(b.text("h1").await, "Household");

    // Groups on the user's edit page.
    b.goto(&format!("/admin/users/{ada}/edit")).await;
    b.click(&format!("#group-{id}")).await;
    b.click("#save-groups").await;
    b.wait_for_path("/admin/users?notice=groups_saved").await;
    b.goto(&format!("/admin/users/{ada}/edit")).await;
    let checked = b
        .js(&format!(
            "return document.getElementById('group-{id}').checked;"
        ))
        .await;
    assert_eq!(checked, json!(true));

    // Delete, confirmed on its own page.
    b.goto(&format!("/admin/groups/{id}")).await;
    b.click("#delete-group").await;
    b.wait_for_path(&format!("/admin/groups/{id}/delete")).await;
    assert_eq!(b.text("h1").await, "Delete Household");
    b.click("#confirm").await;
    b.wait_for_path("/admin/groups?notice=deleted").await;
    assert!(b.exists("#no-groups").await);
}
