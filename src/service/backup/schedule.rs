//! Scheduled backups (`backup.schedule`): a gzip backup into `backup.dir` at each tick, the
//! oldest removed beyond `backup.keep`. A failure is logged, written to the audit log
//! (`backup.failed`) and kept for the Diagnostics page until the next success.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{BackupError, SecretRecord, write_file};
use crate::config::BackupConfig;
use crate::db::{self, DbPool};
use crate::domain::audit::AuditAction;

/// Prefix and suffix of scheduled backup files; only such files are ever pruned.
const PREFIX: &str = "hallpass-";
const SUFFIX: &str = ".jsonl.gz";

/// The last outcomes, shared by the timer and the Diagnostics page.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Last>>);

/// What the Diagnostics page shows.
#[derive(Debug, Clone, Default)]
pub struct Last {
    /// When (RFC 3339) and where the last scheduled backup was written.
    pub ok: Option<(String, PathBuf)>,
    /// When and why the last one failed, if it failed after the last success.
    pub failure: Option<(String, String)>,
}

impl Status {
    pub fn last(&self) -> Last {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn set(&self, f: impl FnOnce(&mut Last)) {
        if let Ok(mut l) = self.0.lock() {
            f(&mut l);
        }
    }
}

/// Runs forever: a backup every `backup.schedule` (the first one a full interval after
/// start-up). Returns at once when no schedule is set.
pub async fn run(
    db: DbPool,
    config: BackupConfig,
    data_dir: PathBuf,
    secret: SecretRecord,
    status: Status,
) {
    let Some(every) = config.schedule.map(|s| s.get()) else {
        return;
    };
    let dir = config.dir_or(&data_dir);
    tracing::info!(every = %crate::config::HumanDuration::secs(every.as_secs()), dir = %dir.display(), keep = config.keep, "scheduled backups on");
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = once(&db, &dir, config.keep, &secret, &status).await;
    }
}

/// One scheduled backup, with its bookkeeping (status, log, audit on failure).
pub async fn once(
    db: &DbPool,
    dir: &Path,
    keep: usize,
    secret: &SecretRecord,
    status: &Status,
) -> Result<PathBuf, BackupError> {
    let result = write_one(db, dir, keep, secret).await;
    let now = super::format::now_rfc3339();
    match &result {
        Ok(path) => {
            tracing::info!(path = %path.display(), "scheduled backup written");
            status.set(|l| {
                l.ok = Some((now, path.clone()));
                l.failure = None;
            });
        }
        Err(e) => {
            let message = e.to_string();
            tracing::error!(dir = %dir.display(), error = %message, "scheduled backup failed");
            status.set(|l| l.failure = Some((now, message.clone())));
            let target = dir.display().to_string();
            let audited = db
                .run(move |conn| {
                    db::audit::insert(
                        conn,
                        &db::audit::NewEvent {
                            actor_id: None,
                            actor: "system",
                            action: AuditAction::BackupFailed,
                            target: Some(&target),
                            ip: None,
                            outcome: "failure",
                            detail: Some(&message),
                        },
                    )
                })
                .await;
            if let Err(e) = audited {
                tracing::warn!(error = %e, "could not audit the failed backup");
            }
        }
    }
    result
}

async fn write_one(
    db: &DbPool,
    dir: &Path,
    keep: usize,
    secret: &SecretRecord,
) -> Result<PathBuf, BackupError> {
    let io = |what: &str, e: std::io::Error| {
        BackupError::Io(format!("cannot {what} {}: {e}", dir.display()))
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io("create the backup directory", e))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]-[subsecond digits:3]"
        ))
        .unwrap_or_default();
    let mut path = dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
    let mut n = 1;
    while tokio::fs::try_exists(&path).await.unwrap_or(false) {
        n += 1;
        path = dir.join(format!("{PREFIX}{stamp}-{n}{SUFFIX}"));
    }
    write_file(db, path.clone(), secret.clone(), Box::new(|_, _| {})).await?;
    prune(dir, keep).map_err(|e| io("clean up old backups in", e))?;
    Ok(path)
}

/// Deletes the oldest scheduled backups (by name, which sorts by time) beyond `keep`.
fn prune(dir: &Path, keep: usize) -> std::io::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in names.into_iter().take(excess) {
        std::fs::remove_file(dir.join(name))?;
    }
    Ok(())
}
