//! `[[apps]]` from the configuration file, written to the database at start-up with
//! `source = 'file'` (read-only in the UI), so forward-auth and the screens read one list.
//!
//! The file wins for its own apps: each is inserted or replaced by name, and file apps that
//! are no longer in the file are removed. It never touches an app made in the UI: one with
//! the same name stops the start-up, naming both. Group names are created when missing;
//! unknown usernames are logged and left out (an account may be created later; until then
//! the rule simply does not list it). One transaction, audited as the configuration file,
//! bumping `rules_version` when anything changed.

use std::collections::{HashMap, HashSet};

use super::{ServiceError, access_of, summary, with_names, write_of};
use crate::config::AppConfig;
use crate::db::{self, Conn, DbPool};
use crate::domain::apps::{App, AppSource};
use crate::domain::audit::AuditAction;
use crate::domain::groups::GroupName;
use crate::service::{Actor, audit};

/// Why the file's apps could not be applied; worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "[[apps]] {file:?} has the same name as the app {ui:?} (id {id}) made on /admin/apps: rename the one in the file, or delete the other on /admin/apps, and start again"
    )]
    NameClash { file: String, ui: String, id: i64 },
    #[error("[[apps]] {app:?}: {message}")]
    Invalid { app: String, message: String },
    #[error("could not apply [[apps]]: {0}")]
    Service(#[from] ServiceError),
}

impl From<db::DbError> for SyncError {
    fn from(e: db::DbError) -> Self {
        SyncError::Service(e.into())
    }
}

/// What the sync did, for the start-up log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    /// Groups created because an app named them.
    pub groups_created: usize,
}

impl SyncReport {
    fn changed(&self) -> bool {
        self.created + self.updated + self.deleted + self.groups_created > 0
    }
}

/// Applies `apps` (the whole `[[apps]]` list) to the database.
pub async fn sync_file_apps(db: &DbPool, apps: &[AppConfig]) -> Result<SyncReport, SyncError> {
    let apps = apps.to_vec();
    db.run(move |conn| db::write_tx(conn, |conn| apply(conn, &apps)))
        .await
}

fn apply(conn: &mut Conn, configs: &[AppConfig]) -> Result<SyncReport, SyncError> {
    let actor = Actor::system("configuration file");
    let mut report = SyncReport::default();
    let existing: HashMap<String, App> = db::apps::load_all(conn)?
        .into_iter()
        .map(|a| (a.name.to_lowercase(), a))
        .collect();
    let mut in_file = HashSet::new();
    for config in configs {
        let key = apply_one(conn, &actor, config, &existing, &mut report)?;
        in_file.insert(key);
    }
    for (key, app) in &existing {
        if app.source == AppSource::File && !in_file.contains(key) {
            db::apps::delete(conn, app.id)?;
            let detail = Some("no longer in [[apps]]");
            audit::record(
                conn,
                &actor,
                AuditAction::AppDelete,
                Some(&app.name),
                detail,
            )?;
            report.deleted += 1;
        }
    }
    if report.changed() {
        db::settings::bump_rules_version(conn)?;
    }
    Ok(report)
}

/// Inserts or replaces one file app (nothing when it is stored as the file says). Returns
/// its name key.
fn apply_one(
    conn: &mut Conn,
    actor: &Actor,
    config: &AppConfig,
    existing: &HashMap<String, App>,
    report: &mut SyncReport,
) -> Result<String, SyncError> {
    let invalid = |message: String| SyncError::Invalid {
        app: config.name.clone(),
        message,
    };
    let draft = config.input().check().map_err(|e| invalid(e.summary()))?;
    let key = draft.name.to_lowercase();
    let current = existing.get(&key);
    if let Some(ui) = current.filter(|a| a.source == AppSource::Ui) {
        return Err(SyncError::NameClash {
            file: draft.name,
            ui: ui.name.clone(),
            id: ui.id,
        });
    }
    let groups = ensure_groups(conn, config, report).map_err(|e| match e {
        Ensure::Name(m) => invalid(format!("groups: {m}")),
        Ensure::Db(d) => d.into(),
    })?;
    let users = known_users(conn, config)?;
    let access = access_of(&draft, groups, users);
    let write = write_of(&draft, &access, AppSource::File);
    let (id, action) = match current {
        Some(app) => {
            let wanted = App {
                id: app.id,
                name: draft.name.clone(),
                url: draft.url.clone(),
                icon: draft.icon.clone(),
                hosts: draft.hosts.clone(),
                paths: draft.paths.clone(),
                access: access.clone(),
                viewers_read_only: draft.viewers_read_only,
                source: AppSource::File,
            };
            if *app == wanted {
                report.unchanged += 1;
                return Ok(key);
            }
            db::apps::update(conn, app.id, &write)?;
            report.updated += 1;
            (app.id, AuditAction::AppUpdate)
        }
        None => {
            report.created += 1;
            (db::apps::insert(conn, &write)?, AuditAction::AppCreate)
        }
    };
    if let Some(app) = db::apps::find(conn, id)? {
        let detail = with_names(conn, vec![app])?.pop().map(|v| summary(&v));
        audit::record(conn, actor, action, Some(&draft.name), detail.as_deref())?;
    }
    Ok(key)
}

enum Ensure {
    Name(String),
    Db(db::DbError),
}

/// Ids of the app's groups, creating the missing ones; sorted, without repeats.
fn ensure_groups(
    conn: &mut Conn,
    config: &AppConfig,
    report: &mut SyncReport,
) -> Result<Vec<i64>, Ensure> {
    let mut ids = Vec::new();
    for raw in &config.groups {
        let name = GroupName::parse(raw).map_err(Ensure::Name)?;
        let known = db::groups::with_keys(conn, &[name.key()]).map_err(Ensure::Db)?;
        let id = match known.first() {
            Some((id, _)) => *id,
            None => {
                report.groups_created += 1;
                tracing::info!(app = %config.name, group = %name.as_str(), "[[apps]]: created the group it names");
                db::groups::ensure(conn, name.as_str()).map_err(Ensure::Db)?
            }
        };
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Ids of the app's users that exist; the others are logged and left out.
fn known_users(conn: &mut Conn, config: &AppConfig) -> Result<Vec<i64>, db::DbError> {
    let keys: Vec<String> = config
        .users
        .iter()
        .map(|u| u.trim().to_ascii_lowercase())
        .filter(|u| !u.is_empty())
        .collect();
    let found = db::users::ids_by_key(conn, &keys)?;
    let mut ids = Vec::new();
    for key in &keys {
        match found.get(key) {
            Some(id) => ids.push(*id),
            None => tracing::warn!(
                app = %config.name,
                user = %key,
                "[[apps]]: no account has this username; it is left out of the app's rule until it exists (restart after creating it)"
            ),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
