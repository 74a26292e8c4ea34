//! The `[backup]` section: scheduled backups and the browser restore's upload limit.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::HumanDuration;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// How often the server writes a backup (`24h`); unset (the default): never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<HumanDuration>,
    /// Where scheduled backups go; default `<server.data_dir>/backups`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// How many scheduled backups to keep (older ones are deleted after each new one).
    pub keep: usize,
    /// Largest backup the setup page's "Restore from backup" accepts, in bytes.
    pub upload_limit: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            schedule: None,
            dir: None,
            keep: 7,
            upload_limit: 64 * 1024 * 1024,
        }
    }
}

impl BackupConfig {
    /// The directory scheduled backups are written to.
    pub fn dir_or(&self, data_dir: &std::path::Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("backups"))
    }

    pub(super) fn check(&self) -> Result<(), String> {
        if self.schedule.is_some_and(|s| s.get().is_zero()) {
            return Err(
                "backup.schedule: must be longer than 0s (leave it unset for no scheduled backups)"
                    .into(),
            );
        }
        if self.keep == 0 {
            return Err("backup.keep: must be at least 1".into());
        }
        if self.upload_limit < 1024 {
            return Err("backup.upload_limit: must be at least 1024 bytes".into());
        }
        Ok(())
    }
}
