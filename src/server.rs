//! Start-up and the serving loop: connect, migrate, bootstrap, serve until told to stop.

use crate::service::Refusal;
use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::bootstrap::BootstrapAdmin;
use crate::config::Config;
use crate::db::{self, DbError, DbPool, PoolOptions};
use crate::secret::{self, SecretError, ServerSecret};
use crate::service::accounts;
use crate::service::passwords::{HashError, PasswordHasher};
use crate::service::setup::SetupGate;
use crate::service::{Actor, ServiceError};
use crate::state::AppState;

/// Why the server could not start; each is worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("could not create the first admin from HALLPASS_ADMIN_*: {0}")]
    Bootstrap(ServiceError),
    /// A `HALLPASS_ADMIN_*` value that does not pass the account rules, found when the
    /// variables are used (a configuration error: exit code 2).
    #[error("{0}")]
    BootstrapInput(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Insecure(String),
    #[error("start-up task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Apps(#[from] crate::service::apps::SyncError),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StartupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StartupError::Task(e.to_string()))
}

/// Loads the server secret (`HALLPASS_SECRET_KEY`, else `secret.key` in the data directory),
/// connects to the database, applies migrations, creates the bootstrap admin if asked and
/// the instance is empty, and returns the state the router serves.
pub async fn prepare(
    config: Config,
    bootstrap: Option<BootstrapAdmin>,
) -> Result<AppState, StartupError> {
    if let Some(refusal) = config.env_auth.bypass_refusal(config.server.bind) {
        return Err(StartupError::Insecure(refusal));
    }
    // First: a bad secret should stop the server before it touches the database.
    let data_dir = config.server.data_dir.clone();
    let env_secret = std::env::var(secret::ENV_VAR).ok();
    let server_secret = blocking(move || ServerSecret::load(&data_dir, env_secret)).await??;
    let url = config.database.url.clone();
    let options = PoolOptions {
        max_connections: config.database.max_connections,
        connect_timeout: config.database.connect_timeout.get(),
        // Only a network database can lose a connection behind the pool's back.
        test_on_check_out: config.database.url.backend() == db::Backend::Postgres,
    };
    let pool = blocking(move || DbPool::connect(&url, &options)).await??;
    let migrated = pool.clone();
    let applied = blocking(move || db::migrations::run(&migrated)).await??;
    tracing::info!(
        backend = %pool.backend(),
        database = %config.database.url,
        applied = applied.len(),
        "database ready"
    );
    // Before anything serves: the rules forward-auth applies include the file's apps.
    let synced = crate::service::apps::sync_file_apps(&pool, &config.apps).await?;
    if synced != crate::service::apps::SyncReport::default() {
        tracing::info!(?synced, "[[apps]] applied");
    }
    let password_config = config.password.clone();
    let hasher = blocking(move || PasswordHasher::new(&password_config)).await??;

    let break_glass = config.env_auth.break_glass.is_some();
    pool.run(move |conn| db::settings::set_break_glass(conn, break_glass))
        .await?;
    if break_glass {
        tracing::warn!(
            "HALLPASS_ADMIN_KEY is set: the built-in break-glass admin \"admin\" can sign in with it; the username \"admin\" is reserved"
        );
    }
    let mut has_users = pool.run(db::users::any).await?;
    if let Some(admin) = bootstrap {
        if has_users {
            tracing::warn!(
                "HALLPASS_ADMIN_USERNAME and its password are set, but users already exist: nothing was changed. Remove these variables from the environment."
            );
        } else {
            let admin = admin.parse().map_err(StartupError::BootstrapInput)?;
            match accounts::create_first_admin(&pool, &hasher, admin, Actor::system("bootstrap"))
                .await
            {
                Ok(user) => {
                    tracing::info!(username = %user.username, "created the first admin from HALLPASS_ADMIN_USERNAME");
                    has_users = true;
                }
                // Another instance on the same database won the race: that is fine.
                Err(ServiceError::Refused(Refusal::AlreadySetUp)) => has_users = true,
                Err(e) => return Err(StartupError::Bootstrap(e)),
            }
        }
    }
    let oidc = crate::service::sso::oidc::OidcRuntime::new();
    let dev_admin = if config.env_auth.bypass {
        let user = accounts::ensure_dev_admin(&pool)
            .await
            .map_err(StartupError::Bootstrap)?;
        tracing::warn!(username = %user.username, "HALLPASS_AUTH_BYPASS is on: every request is signed in as this admin, without a password. For development only.");
        Some(user.id)
    } else {
        None
    };
    let preset_pool = pool.clone();
    let preset = blocking(move || crate::service::proxy::load_preset(&preset_pool))
        .await?
        .map_err(|e| match e {
            ServiceError::Db(d) => StartupError::Db(d),
            other => StartupError::Task(other.to_string()),
        })?;
    let limiter = crate::service::rate_limit::RateLimiter::new(
        &config.auth.rate_limit,
        pool.clone(),
        server_secret.derive_key("rate-limit accounts"),
    );
    // With the dev bypass every request is an admin: there is nothing to set up.
    let setup_code = if has_users || dev_admin.is_some() {
        None
    } else {
        crate::service::setup::ensure_code(&pool)
            .await
            .map_err(|e| match e {
                ServiceError::Db(d) => StartupError::Db(d),
                other => StartupError::Task(other.to_string()),
            })?
    };
    let sessions = crate::service::sessions::Store::new(&pool);
    let authz = crate::service::authz::Authz::new(
        config.auth.forward.default_policy,
        &pool,
        sessions.clone(),
    );
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(config.metrics.enabled));
    if let Some(h) = metrics.db_wait_histogram() {
        pool.record_waits(h);
    }
    if let Some(h) = metrics.password_hash_histogram() {
        hasher.record_durations(h);
    }
    limiter.record_refusals(std::sync::Arc::clone(&metrics));
    Ok(AppState::new(crate::state::Inner {
        metrics,
        limiter,
        sessions,
        keys: crate::service::api_keys::KeyCache::new(&pool),
        pending_badge: Default::default(),
        group_list: Default::default(),
        user_pages: Default::default(),
        proxy_asks_second_factor: Default::default(),
        authz,
        config,
        db: pool,
        hasher,
        setup: SetupGate::new(setup_code),
        secret: server_secret,
        oidc,
        proxy: crate::service::proxy::ProxyRuntime::new(preset),
        dev_admin,
        backups: crate::service::backup::schedule::Status::default(),
    }))
}

/// Binds the configured address.
pub async fn bind(config: &Config) -> Result<TcpListener, StartupError> {
    let addr = config.server.bind;
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// Serves until `shutdown` completes, then drains in-flight requests.
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let base = state
        .config
        .server
        .public_url
        .as_ref()
        .map_or_else(|| format!("http://{local}"), |u| u.as_str().to_owned());
    tracing::info!(address = %local, "Hallpass listening on {base}");
    if let Some(code) = state.setup.code() {
        tracing::warn!(
            "No users yet. Open {base}/setup to create the first admin; the wizard asks for this code (`hallpass setup-code` prints it again). setup code: {code}"
        );
    }
    match &state.config.server.trusted_proxies {
        crate::config::TrustedProxies::All => tracing::warn!(
            "server.trusted_proxies = true: every X-Forwarded-For entry is believed, so anyone who can reach {local} directly chooses the address logged, audited and rate-limited. Use it only when nothing but your reverse proxy can connect."
        ),
        crate::config::TrustedProxies::Hops(n) if *n > 0 => tracing::info!(
            hops = n,
            "server.trusted_proxies: the client address is read from X-Forwarded-For behind {n} proxies, whatever their addresses"
        ),
        _ => {}
    }
    let purge = tokio::spawn(purge_sessions(state.clone()));
    let limits = tokio::spawn(flush_rate_limits(state.clone()));
    let backups = tokio::spawn(crate::service::backup::schedule::run(
        state.db.clone(),
        state.config.backup.clone(),
        state.config.server.data_dir.clone(),
        crate::service::backup::SecretRecord::new(&state.secret, false),
        state.backups.clone(),
    ));
    let seen = tokio::spawn(flush_last_seen(state.clone()));
    let connection_limits = crate::serve::ConnectionLimits::from_config(&state.config.server);
    let result = crate::serve::serve(
        listener,
        crate::web::router(state.clone()),
        connection_limits,
        shutdown,
    )
    .await;
    purge.abort();
    limits.abort();
    backups.abort();
    seen.abort();
    state.limiter.flush().await;
    state.sessions.flush_seen().await;
    tracing::info!(
        password_hashes = state.hasher.hashes_computed(),
        "Hallpass stopped"
    );
    result
}

/// Writes coalesced rate-limit refusals to the audit log and forgets closed windows, once a
/// minute (see `service::rate_limit`).
async fn flush_rate_limits(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.limiter.flush().await;
    }
}

/// Writes the "last seen" times of signed-in sessions (queued at most once a minute per
/// session by the session store) in one batch every 15 seconds.
async fn flush_last_seen(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        tick.tick().await;
        state.sessions.flush_seen().await;
    }
}

/// Deletes expired sessions every `session.purge_interval`.
async fn purge_sessions(state: AppState) {
    let mut tick = tokio::time::interval(state.config.session.purge_interval.get());
    loop {
        tick.tick().await;
        match state.db.run(db::sessions::purge_expired).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "purged expired sessions"),
            Err(e) => tracing::warn!(error = %e, "could not purge expired sessions"),
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (docker stop, systemd). The handlers are installed
/// when this is called, not when the future is first polled, so a signal that arrives while
/// the server is still starting is not lost (nor does it kill the process mid-migration).
/// Must be called inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}
