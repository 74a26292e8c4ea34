//! What every request handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::db::DbPool;
use crate::secret::ServerSecret;
use crate::service::passwords::PasswordHasher;
use crate::service::proxy::ProxyRuntime;
use crate::service::rate_limit::RateLimiter;
use crate::service::setup::SetupGate;
use crate::service::sso::oidc::OidcRuntime;

/// Shared application state; cloning is cheap.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub db: DbPool,
    pub hasher: PasswordHasher,
    pub setup: SetupGate,
    /// The HMAC key of API keys (`Debug` prints `[REDACTED]`).
    pub secret: ServerSecret,
    /// OpenID Connect: HTTP client and discovery cache.
    pub oidc: OidcRuntime,
    /// Forward-auth: the header preset in force.
    pub proxy: ProxyRuntime,
    /// `HALLPASS_AUTH_BYPASS`: the dev admin every request is.
    pub dev_admin: Option<i64>,
    /// Brute-force limits (`auth.rate_limit`): in memory on SQLite, shared by every process
    /// through the database on PostgreSQL.
    pub limiter: RateLimiter,
    /// The session store (with its cache), shared by the session layer and forward-auth.
    pub sessions: crate::service::sessions::Store,
    /// The owners of recently used API keys.
    pub keys: crate::service::api_keys::KeyCache,
    /// The admin navigation's pending badge, kept while nothing changes.
    pub pending_badge: crate::service::stamped::Stamped<i64>,
    /// Whether proxy sign-ins ask for the second factor too, kept while nothing changes.
    pub proxy_asks_second_factor: crate::service::stamped::Stamped<bool>,
    /// The user table's pages read last, kept while nothing they show changes.
    pub user_pages: crate::service::users::KeptPages,
    /// The user table's group filter, kept while nothing changes.
    pub group_list:
        crate::service::stamped::Stamped<std::sync::Arc<Vec<crate::domain::groups::Group>>>,
    /// Forward-auth: the app rules, reloaded when they change.
    pub authz: crate::service::authz::Authz,
    /// The outcome of the last scheduled backup (`backup.schedule`), for Diagnostics.
    pub backups: crate::service::backup::schedule::Status,
    /// `GET /metrics`: this instance's registry and counters (see `crate::metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
