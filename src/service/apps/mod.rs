//! Apps and their access rules: what admins create, change and remove on `/admin/apps` and
//! through `/api/admin/apps` (one function each, for both front ends), the reads those
//! screens show, the rule tester, the portal on `/`, and the start-up sync of `[[apps]]`.
//!
//! Every write runs in one locked transaction that checks the input against the database
//! (unique name, known groups and users, not an app from the file), writes, records an
//! audit event and bumps `settings.rules_version`, so every process applies the new rules
//! on its next request.

mod portal;
mod sync;
mod tester;

pub use portal::{Portal, PortalApp, PortalIcon, portal};
pub use sync::{SyncError, SyncReport, sync_file_apps};
pub use tester::test_rule;

use std::collections::HashMap;

use super::{Actor, Missing, Refusal, ServiceError};
use crate::db::{self, Conn, DbError, DbPool};
use crate::domain::FieldErrors;
use crate::domain::apps::{Access, AccessKind, App, AppDraft, AppInput, AppSource, GroupRef};
use crate::domain::audit::AuditAction;

/// An app with the names of the groups and accounts its rule lists (rules store ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub app: App,
    /// (id, name), in the rule's order.
    pub groups: Vec<(i64, String)>,
    /// (id, username), in the rule's order.
    pub users: Vec<(i64, String)>,
}

impl AppView {
    /// The app as its form shows it, for editing (and for PATCH to start from).
    pub fn to_input(&self) -> AppInput {
        let a = &self.app;
        let roles = match &a.access {
            Access::Restricted { roles, .. } => {
                roles.iter().map(|r| r.as_str().to_owned()).collect()
            }
            _ => Vec::new(),
        };
        AppInput {
            name: a.name.clone(),
            url: a.url.clone().unwrap_or_default(),
            icon: a.icon.clone().unwrap_or_default(),
            hosts: a.hosts.iter().map(ToString::to_string).collect(),
            paths: a.paths.iter().map(ToString::to_string).collect(),
            access: a.access.kind().as_str().to_owned(),
            roles,
            groups: self
                .groups
                .iter()
                .map(|(_, n)| GroupRef::Name(n.clone()))
                .collect(),
            users: self.users.iter().map(|(_, n)| n.clone()).collect(),
            viewers_read_only: a.viewers_read_only,
        }
    }
}

/// Every app, by name (any case), with the names its rules list.
pub async fn list(db: &DbPool) -> Result<Vec<AppView>, ServiceError> {
    let mut views = db
        .run(|c| {
            let apps = db::apps::load_all(c)?;
            with_names(c, apps)
        })
        .await?;
    views.sort_by_cached_key(|v| (v.app.name.to_lowercase(), v.app.id));
    Ok(views)
}

/// App `id` with its names, or `NotFound(App)`.
pub async fn get(db: &DbPool, id: i64) -> Result<AppView, ServiceError> {
    db.run(move |c| view(c, id)).await
}

fn view(conn: &mut Conn, id: i64) -> Result<AppView, ServiceError> {
    let app = db::apps::find(conn, id)?.ok_or(Missing::App)?;
    with_names(conn, vec![app])?
        .pop()
        .ok_or(ServiceError::Internal(
            "an app vanished inside its transaction",
        ))
}

/// Adds the names of the listed groups and users: two queries whatever the number of apps.
fn with_names(conn: &mut Conn, apps: Vec<App>) -> Result<Vec<AppView>, DbError> {
    let (mut group_ids, mut user_ids) = (Vec::new(), Vec::new());
    for a in &apps {
        if let Access::Restricted { groups, users, .. } = &a.access {
            group_ids.extend_from_slice(groups);
            user_ids.extend_from_slice(users);
        }
    }
    let group_names = db::groups::names(conn, &group_ids)?;
    let usernames = db::users::usernames(conn, &user_ids)?;
    let named = |ids: &[i64], names: &HashMap<i64, String>| -> Vec<(i64, String)> {
        ids.iter()
            .filter_map(|id| names.get(id).map(|n| (*id, n.clone())))
            .collect()
    };
    Ok(apps
        .into_iter()
        .map(|app| {
            let (groups, users) = match &app.access {
                Access::Restricted { groups, users, .. } => {
                    (named(groups, &group_names), named(users, &usernames))
                }
                _ => (Vec::new(), Vec::new()),
            };
            AppView { app, groups, users }
        })
        .collect())
}

/// Creates an app managed in the UI.
pub async fn create(db: &DbPool, actor: Actor, input: AppInput) -> Result<AppView, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let (draft, access) = checked(conn, None, &input)?;
            let id = db::apps::insert(conn, &write_of(&draft, &access, AppSource::Ui))?;
            finish(conn, &actor, AuditAction::AppCreate, id)
        })
    })
    .await
}

/// Replaces app `id` with `input` (an app from the configuration file is refused).
pub async fn update(
    db: &DbPool,
    actor: Actor,
    id: i64,
    input: AppInput,
) -> Result<AppView, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            editable(conn, id)?;
            let (draft, access) = checked(conn, Some(id), &input)?;
            db::apps::update(conn, id, &write_of(&draft, &access, AppSource::Ui))?;
            finish(conn, &actor, AuditAction::AppUpdate, id)
        })
    })
    .await
}

/// Removes app `id` (an app from the configuration file is refused). Returns its name.
pub async fn delete(db: &DbPool, actor: Actor, id: i64) -> Result<String, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let app = editable(conn, id)?;
            db::apps::delete(conn, id)?;
            super::audit::record(conn, &actor, AuditAction::AppDelete, Some(&app.name), None)?;
            db::settings::bump_rules_version(conn)?;
            Ok(app.name)
        })
    })
    .await
}

/// App `id`, when the UI may change it.
fn editable(conn: &mut Conn, id: i64) -> Result<App, ServiceError> {
    let app = db::apps::find(conn, id)?.ok_or(Missing::App)?;
    if app.source == AppSource::File {
        return Err(Refusal::AppReadOnly(app.name).into());
    }
    Ok(app)
}

/// Audits the write, bumps the rules version and reads the app back.
fn finish(
    conn: &mut Conn,
    actor: &Actor,
    action: AuditAction,
    id: i64,
) -> Result<AppView, ServiceError> {
    let saved = view(conn, id)?;
    let detail = summary(&saved);
    super::audit::record(conn, actor, action, Some(&saved.app.name), Some(&detail))?;
    db::settings::bump_rules_version(conn)?;
    Ok(saved)
}

/// `hosts=… paths=… access=…` for the audit log.
fn summary(v: &AppView) -> String {
    let join = |items: Vec<String>| items.join(",");
    let a = &v.app;
    let mut s = format!(
        "hosts={} access={}",
        join(a.hosts.iter().map(ToString::to_string).collect()),
        a.access.kind()
    );
    if !a.paths.is_empty() {
        s.push_str(&format!(
            " paths={}",
            join(a.paths.iter().map(ToString::to_string).collect())
        ));
    }
    if let Access::Restricted { roles, .. } = &a.access {
        for (label, names) in [
            (
                "roles",
                roles
                    .iter()
                    .map(|r| r.as_str().to_owned())
                    .collect::<Vec<_>>(),
            ),
            ("groups", v.groups.iter().map(|(_, n)| n.clone()).collect()),
            ("users", v.users.iter().map(|(_, n)| n.clone()).collect()),
        ] {
            if !names.is_empty() {
                s.push_str(&format!(" {label}={}", join(names)));
            }
        }
    }
    if a.viewers_read_only {
        s.push_str(" viewers_read_only");
    }
    s
}

/// Checks `input` completely: its own fields, then against the database (the name free
/// for app `except`, the groups and users known). Every problem is reported at once.
fn checked(
    conn: &mut Conn,
    except: Option<i64>,
    input: &AppInput,
) -> Result<(AppDraft, Access), ServiceError> {
    let draft = input.check();
    let mut errors = draft.as_ref().err().cloned().unwrap_or_default();
    let name_key = input.name.trim().to_lowercase();
    if let Some((id, name, source)) = db::apps::by_name_key(conn, &name_key)?
        && Some(id) != except
    {
        let from_file = if source == AppSource::File {
            " (declared in the configuration file)"
        } else {
            ""
        };
        errors.add(
            "name",
            format!("Another app is already named “{name}”{from_file}."),
        );
    }
    let groups = resolve_groups(conn, &input.groups, &mut errors)?;
    let users = resolve_users(conn, &input.users, &mut errors)?;
    match draft {
        Ok(draft) if errors.is_empty() => {
            let access = access_of(&draft, groups, users);
            Ok((draft, access))
        }
        _ => Err(ServiceError::Validation(errors)),
    }
}

/// The rule's [`Access`] from its kind, roles and resolved lists.
fn access_of(draft: &AppDraft, groups: Vec<i64>, users: Vec<i64>) -> Access {
    match draft.kind {
        AccessKind::Public => Access::Public,
        AccessKind::SignedIn => Access::SignedIn,
        AccessKind::Restricted => Access::Restricted {
            roles: draft.roles.clone(),
            groups,
            users,
        },
    }
}

fn write_of<'a>(
    draft: &'a AppDraft,
    access: &'a Access,
    source: AppSource,
) -> db::apps::AppWrite<'a> {
    db::apps::AppWrite {
        name: &draft.name,
        url: draft.url.as_deref(),
        icon: draft.icon.as_deref(),
        hosts: &draft.hosts,
        paths: &draft.paths,
        access,
        viewers_read_only: draft.viewers_read_only,
        source,
    }
}

/// “a”, “b” for a message.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("“{n}”"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids of the groups named (any case) or numbered in `refs`, sorted and without repeats.
/// A name that is all digits and names no group is tried as an id. Unknown ones are one
/// message under `groups`.
fn resolve_groups(
    conn: &mut Conn,
    refs: &[GroupRef],
    errors: &mut FieldErrors,
) -> Result<Vec<i64>, DbError> {
    let names: Vec<String> = refs
        .iter()
        .filter_map(|r| match r {
            GroupRef::Name(n) if !n.trim().is_empty() => Some(n.trim().to_owned()),
            _ => None,
        })
        .collect();
    let keys: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
    let by_key: HashMap<String, i64> = db::groups::with_keys(conn, &keys)?
        .into_iter()
        .map(|(id, key)| (key, id))
        .collect();
    let mut ids = Vec::new();
    // (shown text, id to check)
    let mut numbered: Vec<(String, i64)> = Vec::new();
    let mut unknown = Vec::new();
    for n in &names {
        match (by_key.get(&n.to_lowercase()), n.parse::<i64>()) {
            (Some(id), _) => ids.push(*id),
            (None, Ok(id)) => numbered.push((n.clone(), id)),
            (None, Err(_)) => unknown.push(n.clone()),
        }
    }
    numbered.extend(refs.iter().filter_map(|r| match r {
        GroupRef::Id(id) => Some((format!("#{id}"), *id)),
        GroupRef::Name(_) => None,
    }));
    let wanted: Vec<i64> = numbered.iter().map(|(_, id)| *id).collect();
    let found = db::groups::names(conn, &wanted)?;
    for (shown, id) in numbered {
        if found.contains_key(&id) {
            ids.push(id);
        } else {
            unknown.push(shown);
        }
    }
    if !unknown.is_empty() {
        errors.add("groups", format!("No such group: {}.", quoted(&unknown)));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Ids of the accounts named in `names` (usernames, any case), sorted and without repeats.
/// Unknown (or deleted) ones are one message under `users`.
fn resolve_users(
    conn: &mut Conn,
    names: &[String],
    errors: &mut FieldErrors,
) -> Result<Vec<i64>, DbError> {
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty())
        .collect();
    let keys: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let by_key = db::users::ids_by_key(conn, &keys)?;
    let mut ids = Vec::new();
    let mut unknown = Vec::new();
    for (n, k) in names.iter().zip(&keys) {
        match by_key.get(k) {
            Some(id) => ids.push(*id),
            None => unknown.push((*n).to_owned()),
        }
    }
    if !unknown.is_empty() {
        errors.add("users", format!("No account named {}.", quoted(&unknown)));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
