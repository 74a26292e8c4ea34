//! Forward-auth: may this request reach the app it is for? Asked by Caddy, nginx and
//! Traefik before every request of every guarded app, so this is the hottest path of the
//! product.
//!
//! - The rules (apps from `/admin/apps` and `[[apps]]`) stay loaded as an [`AppTable`] and
//!   are reloaded when `settings.rules_version` moves (every write to apps, groups or
//!   memberships bumps it in its transaction), so a change made by any process takes effect
//!   on the next request.
//! - Callers (session → user → groups; an API key's owner → groups) and the table are also
//!   kept between requests,
//!   stamped with the database's change stamp ([`crate::db::changes`]: SQLite's WAL-index
//!   header, PostgreSQL's count of change notifications): a commit that can end or narrow
//!   access — a password change, a sign-out, a role, a rule, a write by another process —
//!   moves it, and the next request reads the database again, once per caller and stamp
//!   however many checks arrive together (`service::read_turns`). A request that finds
//!   nothing changed costs no database work at all.

mod caller;
mod check;

pub use caller::{Caller, Credentials, Person, Via};
pub use check::{Checked, Ctx};

use std::sync::{Arc, RwLock};

use crate::db::changes::Stamp;
use crate::db::{self, DbPool};
use crate::domain::apps::{AppTable, DefaultPolicy};
use crate::service::read_turns::{Looked, ReadTurns};

use super::ServiceError;
use super::sessions::Store;

/// The rules and caches of this process.
#[derive(Debug)]
pub struct Authz {
    default_policy: DefaultPolicy,
    loaded: RwLock<Option<Loaded>>,
    /// Its change probe tells whether a cached answer is still current.
    db: DbPool,
    store: Store,
    callers: caller::Cache,
    /// One read of the rules per stamp (`service::read_turns`).
    table_turns: ReadTurns,
}

#[derive(Debug)]
struct Loaded {
    rules_version: i64,
    /// The change stamp the table was last known current at (SQLite).
    stamp: Option<Stamp>,
    table: Arc<AppTable>,
}

impl Authz {
    pub fn new(default_policy: DefaultPolicy, db: &DbPool, store: Store) -> Authz {
        Authz {
            default_policy,
            loaded: RwLock::new(None),
            db: db.clone(),
            store,
            callers: caller::Cache::default(),
            table_turns: ReadTurns::default(),
        }
    }

    /// The rules in force now.
    pub async fn table(&self, db: &DbPool) -> Result<Arc<AppTable>, ServiceError> {
        let stamp = self.db.change_stamp().await;
        self.table_at(db, stamp).await
    }

    async fn table_at(
        &self,
        db: &DbPool,
        stamp: Option<Stamp>,
    ) -> Result<Arc<AppTable>, ServiceError> {
        if stamp.is_some()
            && let Some(table) = self.cached(|l| l.stamp == stamp)
        {
            return Ok(table);
        }
        // One read of the rules per stamp (`service::read_turns`).
        let look = |s: Stamp| self.cached(|l| l.stamp == Some(s));
        let _turn = match self.table_turns.look_again(&(), stamp, look).await {
            Looked::Hit(table) => return Ok(table),
            Looked::Miss(turn) => turn,
        };
        let version = db.run(db::settings::rules_version).await?;
        if let Some(table) = self.cached(|l| l.rules_version == version) {
            self.remember(version, stamp, table.clone());
            return Ok(table);
        }
        let (version, apps) = db
            .run(|c| {
                Ok::<_, db::DbError>((db::settings::rules_version(c)?, db::apps::load_all(c)?))
            })
            .await?;
        let table = Arc::new(AppTable::new(apps, self.default_policy));
        self.remember(version, stamp, table.clone());
        Ok(table)
    }

    fn cached(&self, current: impl Fn(&Loaded) -> bool) -> Option<Arc<AppTable>> {
        let slot = self.loaded.read().ok()?;
        slot.as_ref()
            .filter(|l| current(l))
            .map(|l| l.table.clone())
    }

    fn remember(&self, rules_version: i64, stamp: Option<Stamp>, table: Arc<AppTable>) {
        if let Ok(mut slot) = self.loaded.write() {
            *slot = Some(Loaded {
                rules_version,
                stamp,
                table,
            });
        }
    }
}

/// The groups `user_id` is in, as (id, name), by name.
pub async fn groups_of(db: &DbPool, user_id: i64) -> Result<Vec<(i64, String)>, ServiceError> {
    Ok(db.run(move |c| db::groups::of_user(c, user_id)).await?)
}
