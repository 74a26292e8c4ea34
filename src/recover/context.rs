//! An open database and a runtime to drive the (async) service layer, shared by every
//! subcommand.

use std::future::Future;

use hallpass::config::Config;
use hallpass::db::{self, Backend, DbPool, PoolOptions};
use hallpass::domain::User;
use hallpass::service::passwords::PasswordHasher;
use hallpass::service::recovery;
use hallpass::service::{Missing, Refusal, ServiceError};

use super::Failure;

/// An open database and a runtime to drive the (async) service layer on this thread.
pub(super) struct Ctx {
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) db: DbPool,
    pub(super) config: Config,
}

impl Ctx {
    pub(super) fn open(config: Config) -> Result<Self, Failure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Failed(format!("cannot start the async runtime: {e}")))?;
        let url = &config.database.url;
        let options = PoolOptions {
            // One command, one connection at a time; a second spare for the migrations.
            max_connections: config.database.max_connections.clamp(1, 2),
            connect_timeout: config.database.connect_timeout.get(),
            test_on_check_out: url.backend() == Backend::Postgres,
        };
        let db = DbPool::connect(url, &options).map_err(|e| Failure::Failed(e.to_string()))?;
        let applied = db::migrations::run(&db).map_err(|e| Failure::Failed(e.to_string()))?;
        if !applied.is_empty() {
            eprintln!("Applied {} database migration(s).", applied.len());
        }
        Ok(Self { rt, db, config })
    }

    pub(super) fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub(super) fn hasher(&self) -> Result<PasswordHasher, Failure> {
        PasswordHasher::new(&self.config.password).map_err(|e| Failure::Failed(e.to_string()))
    }

    /// The account named `username`, or a failure naming it.
    pub(super) fn user(&self, username: &str) -> Result<User, Failure> {
        match self.block(recovery::find_user(&self.db, username)) {
            Err(ServiceError::Refused(Refusal::NotFound(Missing::Account))) => {
                Err(Failure::Failed(format!(
                    "no account named \"{username}\" (hallpass recover status lists them)"
                )))
            }
            other => Ok(other?),
        }
    }

    /// Whether password sign-in is on in effect; a hint when it is not.
    pub(super) fn warn_if_local_login_off(&self) -> Result<(), Failure> {
        let modes = self.block(hallpass::service::sso::providers::modes(
            &self.db,
            &self.config.sso,
        ))?;
        if !modes.local {
            println!(
                "Note: password sign-in is off on this instance; turn it back on with \
                 `hallpass recover enable-local`."
            );
        }
        Ok(())
    }
}
