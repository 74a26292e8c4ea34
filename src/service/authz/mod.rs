//! Forward-auth: which apps a request may reach. The rules live in the database (apps from
//! `/admin/apps` and `[[apps]]`); this module keeps them loaded as an
//! [`AppTable`] and reloads them when `settings.rules_version` moved, so a change made by
//! any process takes effect on the next request.

use std::sync::{Arc, RwLock};

use crate::db::{self, DbPool};
use crate::domain::apps::{AppTable, DefaultPolicy};

use super::ServiceError;

/// The loaded rules of this process.
#[derive(Debug)]
pub struct Authz {
    default_policy: DefaultPolicy,
    loaded: RwLock<Option<(i64, Arc<AppTable>)>>,
}

impl Authz {
    pub fn new(default_policy: DefaultPolicy) -> Authz {
        Authz {
            default_policy,
            loaded: RwLock::new(None),
        }
    }

    /// The rules in force now.
    pub async fn table(&self, db: &DbPool) -> Result<Arc<AppTable>, ServiceError> {
        let version = db.run(db::settings::rules_version).await?;
        if let Some(table) = self.cached(version) {
            return Ok(table);
        }
        let (version, apps) = db
            .run(|c| {
                Ok::<_, db::DbError>((db::settings::rules_version(c)?, db::apps::load_all(c)?))
            })
            .await?;
        let table = Arc::new(AppTable::new(apps, self.default_policy));
        if let Ok(mut slot) = self.loaded.write() {
            *slot = Some((version, table.clone()));
        }
        Ok(table)
    }

    fn cached(&self, version: i64) -> Option<Arc<AppTable>> {
        let slot = self.loaded.read().ok()?;
        slot.as_ref()
            .filter(|(v, _)| *v == version)
            .map(|(_, t)| t.clone())
    }
}

/// The groups `user_id` is in, as (id, name), by name.
pub async fn groups_of(db: &DbPool, user_id: i64) -> Result<Vec<(i64, String)>, ServiceError> {
    Ok(db.run(move |c| db::groups::of_user(c, user_id)).await?)
}
