//! What every request handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::db::DbPool;
use crate::secret::ServerSecret;
use crate::service::passwords::PasswordHasher;
use crate::service::proxy::ProxyRuntime;
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
}

impl AppState {
    pub fn new(
        config: Config,
        db: DbPool,
        hasher: PasswordHasher,
        setup: SetupGate,
        secret: ServerSecret,
        oidc: OidcRuntime,
        proxy: ProxyRuntime,
    ) -> Self {
        Self(Arc::new(Inner {
            config,
            db,
            hasher,
            setup,
            secret,
            oidc,
            proxy,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
