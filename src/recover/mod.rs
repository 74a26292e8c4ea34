//! `hallpass recover …`: the way back in when nobody can sign in. Each subcommand works
//! directly on the configured database (the configuration `serve` reads; migrations applied
//! as at start-up), possibly while the server runs: changes go through the service layer,
//! under the same instance write lock as the web's, checked by the same rules (never zero
//! active admins), and are audited with the actor `cli`.
//!
//! Exit codes: 0 done, 1 failed (no such account, the database…), 2 refused (bad arguments,
//! no confirmation, or a rule said no).
//!
//! This file holds the arguments and the dispatch; beside it: `context` (the open database),
//! `prompt` (confirmations and passwords on the terminal), `sign_in` (`wipe-sso`,
//! `enable-local`), `accounts` (`reset-password`, `reset-2fa`, `create-admin`,
//! `disable-user`, `delete-user`) and `status` (the report of `recover status`).

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hallpass::config::Config;
use hallpass::service::admin::Change;
use hallpass::service::recovery;
use hallpass::service::{Refusal, ServiceError};

mod accounts;
mod context;
mod prompt;
mod sign_in;
mod status;

use accounts::{change_standing, create_admin, reset_password, reset_two_factor};
use context::Ctx;
use sign_in::{enable_local, wipe_sso};
use status::render_status;

/// `hallpass recover`'s arguments.
#[derive(Args)]
pub struct RecoverArgs {
    #[command(subcommand)]
    command: RecoverCommand,
}

#[derive(Subcommand)]
enum RecoverCommand {
    /// Show the sign-in settings, the SSO providers (never their secrets) and every account
    /// with its sign-in methods, role and status.
    Status,
    /// Remove the SSO configuration: stored providers and every identity linked through an
    /// OpenID provider; SSO login off, password sign-in on; everyone's sessions end.
    WipeSso {
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        force: bool,
    },
    /// Turn password (local) sign-in back on.
    EnableLocal,
    /// Set a new password for an account and end its sessions. Asks twice on a terminal.
    ResetPassword {
        #[arg(long, value_name = "NAME")]
        username: String,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account's second factors (authenticator secret, recovery codes and every
    /// passkey) and end its sessions, for someone who lost them. Refused when the passkeys
    /// are its only way in: give it a password first (reset-password). The recovery CLI
    /// itself never asks for a second factor.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[arg(long, value_name = "NAME")]
        username: String,
    },
    /// Create an active admin account. Asks for its password twice on a terminal.
    CreateAdmin {
        #[arg(long, value_name = "NAME")]
        username: String,
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Read the password from the first line of stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and end its sessions (never the last active admin).
    DisableUser {
        #[arg(long, value_name = "NAME")]
        username: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        force: bool,
    },
    /// Delete an account (soft: an admin can restore it in /admin/users) and end its
    /// sessions (never the last active admin).
    DeleteUser {
        #[arg(long, value_name = "NAME")]
        username: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        force: bool,
    },
}

impl RecoverCommand {
    fn name(&self) -> &'static str {
        match self {
            RecoverCommand::Status => "status",
            RecoverCommand::WipeSso { .. } => "wipe-sso",
            RecoverCommand::EnableLocal => "enable-local",
            RecoverCommand::ResetPassword { .. } => "reset-password",
            RecoverCommand::ResetTwoFactor { .. } => "reset-2fa",
            RecoverCommand::CreateAdmin { .. } => "create-admin",
            RecoverCommand::DisableUser { .. } => "disable-user",
            RecoverCommand::DeleteUser { .. } => "delete-user",
        }
    }
}

/// Why a subcommand stopped, and so its exit code.
enum Failure {
    /// Exit 1: it could not be done (no such account, the database…).
    Failed(String),
    /// Exit 2: bad arguments, no confirmation, or a rule refused it. Nothing changed.
    Refused(String),
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused(Refusal::Policy(p)) => Failure::Refused(p.to_string()),
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// Runs one `recover` subcommand and prints what it did.
pub fn run(config: Config, args: RecoverArgs) -> ExitCode {
    match dispatch(config, args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
        Err(Failure::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
    }
}

/// `hallpass setup-code`: prints the code the setup wizard asks for (the same one the server
/// logged), or says the instance is set up. Exit 0 with the code, 2 when there is none.
pub fn setup_code(config: Config) -> ExitCode {
    let result = Ctx::open(config).and_then(|ctx| {
        ctx.block(hallpass::service::setup::ensure_code(&ctx.db))
            .map_err(Failure::from)
    });
    match result {
        Ok(Some(code)) => {
            println!("{code}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "Hallpass is already set up: there is no setup code. Sign in, or see `hallpass recover --help` if you are locked out."
            );
            ExitCode::from(2)
        }
        Err(Failure::Failed(m) | Failure::Refused(m)) => {
            eprintln!("error: {m}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(config: Config, command: RecoverCommand) -> Result<(), Failure> {
    // Refuse what cannot be confirmed or typed before touching the database.
    let interactive = io::stdin().is_terminal();
    match &command {
        RecoverCommand::WipeSso { force: false }
        | RecoverCommand::DisableUser { force: false, .. }
        | RecoverCommand::DeleteUser { force: false, .. }
            if !interactive =>
        {
            return Err(Failure::Refused(format!(
                "`hallpass recover {}` asks for confirmation, but stdin is not a terminal: \
                 add --force to run it without asking",
                command.name()
            )));
        }
        RecoverCommand::ResetPassword {
            password_stdin: false,
            ..
        }
        | RecoverCommand::CreateAdmin {
            password_stdin: false,
            ..
        } if !interactive => {
            return Err(Failure::Refused(
                "stdin is not a terminal, so the password cannot be asked for: send it on \
                 stdin with --password-stdin"
                    .into(),
            ));
        }
        _ => {}
    }
    let ctx = Ctx::open(config)?;
    match command {
        RecoverCommand::Status => {
            let overview = ctx.block(recovery::overview(&ctx.db, &ctx.config.sso))?;
            print!("{}", render_status(&ctx.config, &overview));
            Ok(())
        }
        RecoverCommand::WipeSso { force } => wipe_sso(&ctx, force),
        RecoverCommand::EnableLocal => enable_local(&ctx),
        RecoverCommand::ResetPassword {
            username,
            password_stdin,
        } => reset_password(&ctx, &username, password_stdin),
        RecoverCommand::ResetTwoFactor { username } => reset_two_factor(&ctx, &username),
        RecoverCommand::CreateAdmin {
            username,
            email,
            password_stdin,
        } => create_admin(&ctx, &username, email.as_deref(), password_stdin),
        RecoverCommand::DisableUser { username, force } => {
            change_standing(&ctx, &username, force, Change::Disable)
        }
        RecoverCommand::DeleteUser { username, force } => {
            change_standing(&ctx, &username, force, Change::Delete)
        }
    }
}
