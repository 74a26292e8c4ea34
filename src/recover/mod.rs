//! `hallpass recover …`: the way back in when nobody can sign in. Each subcommand works
//! directly on the configured database (the configuration `serve` reads; migrations applied
//! as at start-up), possibly while the server runs: changes go through the service layer,
//! under the same instance write lock as the web's, checked by the same rules (never zero
//! active admins), and are audited with the actor `cli`.
//!
//! Exit codes: 0 done, 1 failed (no such account, the database…), 2 refused (bad arguments,
//! no confirmation, or a rule said no).

use std::future::Future;
use std::io::{self, BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hallpass::config::Config;
use hallpass::db::{self, Backend, DbPool, PoolOptions};
use hallpass::domain::policy::PolicyError;
use hallpass::domain::sso::{PROXY_PROVIDER, Source};
use hallpass::domain::{Email, Password, Role, User, Username};
use hallpass::service::ServiceError;
use hallpass::service::admin::{self, Change, InitialPassword, Profile};
use hallpass::service::passwords::PasswordHasher;
use hallpass::service::recovery::{self, Overview};

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
            ServiceError::Policy(p) => Failure::Refused(p.to_string()),
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

/// An open database and a runtime to drive the (async) service layer on this thread.
struct Ctx {
    rt: tokio::runtime::Runtime,
    db: DbPool,
    config: Config,
}

impl Ctx {
    fn open(config: Config) -> Result<Self, Failure> {
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

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn hasher(&self) -> Result<PasswordHasher, Failure> {
        PasswordHasher::new(&self.config.password).map_err(|e| Failure::Failed(e.to_string()))
    }

    /// The account named `username`, or a failure naming it.
    fn user(&self, username: &str) -> Result<User, Failure> {
        match self.block(recovery::find_user(&self.db, username)) {
            Err(ServiceError::NotFound) => Err(Failure::Failed(format!(
                "no account named \"{username}\" (hallpass recover status lists them)"
            ))),
            other => Ok(other?),
        }
    }

    /// Whether password sign-in is on in effect; a hint when it is not.
    fn warn_if_local_login_off(&self) -> Result<(), Failure> {
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

/// Asks on the terminal to type `expected`; anything else cancels.
fn confirm(what: &str, expected: &str) -> Result<(), Failure> {
    eprintln!("{what}");
    eprint!("Type {expected} to confirm: ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::Failed(format!("cannot read the confirmation: {e}")))?;
    if line.trim() == expected {
        Ok(())
    } else {
        Err(Failure::Refused(
            "not confirmed: nothing was changed".into(),
        ))
    }
}

/// The new password: the first line of stdin (without its line ending), or asked twice on
/// the terminal without echo. Checked by the same rules as everywhere else.
fn new_password(from_stdin: bool, username: &str) -> Result<Password, Failure> {
    let unreadable = |e: io::Error| Failure::Failed(format!("cannot read the password: {e}"));
    if from_stdin {
        let mut line = String::new();
        let n = io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(unreadable)?;
        if n == 0 {
            return Err(Failure::Refused(
                "--password-stdin: stdin was empty; send the password as one line".into(),
            ));
        }
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        return Password::parse(line).map_err(Failure::Refused);
    }
    let first =
        rpassword::prompt_password(format!("New password for {username}: ")).map_err(unreadable)?;
    Password::parse(&first).map_err(Failure::Refused)?;
    let second = rpassword::prompt_password("Type it again: ").map_err(unreadable)?;
    Password::parse_confirmed(&first, &second).map_err(|(_, m)| Failure::Refused(m))
}

fn wipe_sso(ctx: &Ctx, force: bool) -> Result<(), Failure> {
    if !force {
        let o = ctx.block(recovery::overview(&ctx.db, &ctx.config.sso))?;
        let stored = o
            .providers
            .iter()
            .filter(|p| p.source == Source::Ui)
            .count();
        let links = o
            .accounts
            .iter()
            .flat_map(|a| &a.identities)
            .filter(|i| i.provider != PROXY_PROVIDER)
            .count();
        confirm(
            &format!(
                "This deletes {stored} stored SSO provider(s) and {links} SSO identity link(s), \
                 turns SSO login off and password sign-in on, and signs everyone out."
            ),
            "wipe-sso",
        )?;
    }
    let wiped = ctx.block(recovery::wipe_sso(&ctx.db, recovery::actor()))?;
    println!(
        "Removed {} stored SSO provider(s) and {} SSO identity link(s). SSO login is off, \
         password sign-in is on, and the sessions of all {} account(s) have ended.",
        wiped.providers, wiped.identities, wiped.accounts
    );
    if !ctx.config.sso.providers.is_empty() {
        let ids: Vec<&str> = ctx
            .config
            .sso
            .providers
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        println!(
            "Providers defined in the environment are not stored and were kept: {} \
             (remove them from HALLPASS_OIDC_PROVIDERS). SSO login stays off until an admin \
             turns it on in /admin/sso.",
            ids.join(", ")
        );
    }
    if !wiped.without_password.is_empty() {
        println!(
            "These accounts have no password and cannot sign in until they get one \
             (`hallpass recover reset-password --username NAME`): {}",
            wiped.without_password.join(", ")
        );
    }
    Ok(())
}

fn enable_local(ctx: &Ctx) -> Result<(), Failure> {
    let changed = ctx.block(recovery::enable_local(&ctx.db, recovery::actor()))?;
    if changed {
        println!("Password sign-in is on again.");
    } else {
        println!("Password sign-in was already on.");
    }
    Ok(())
}

fn reset_password(ctx: &Ctx, username: &str, from_stdin: bool) -> Result<(), Failure> {
    let user = ctx.user(username)?;
    let password = new_password(from_stdin, &user.username)?;
    let hasher = ctx.hasher()?;
    let change = Change::ResetPassword(password);
    let after = ctx.block(admin::apply(
        &ctx.db,
        &hasher,
        recovery::actor(),
        user.id,
        change,
    ))?;
    println!(
        "New password set for \"{}\"; their sessions have ended.",
        user.username
    );
    if let Some(u) = after.filter(|u| !u.may_sign_in()) {
        let standing = if u.deleted_at.is_some() {
            "deleted"
        } else {
            "disabled"
        };
        println!(
            "Note: the account is {standing}, so it still cannot sign in (an admin can restore \
             or enable it in /admin/users)."
        );
    }
    ctx.warn_if_local_login_off()
}

fn create_admin(
    ctx: &Ctx,
    username: &str,
    email: Option<&str>,
    from_stdin: bool,
) -> Result<(), Failure> {
    let username =
        Username::parse(username).map_err(|m| Failure::Refused(format!("--username: {m}")))?;
    let email = email
        .map(Email::parse)
        .transpose()
        .map_err(|m| Failure::Refused(format!("--email: {m}")))?;
    if let Ok(existing) = ctx.block(recovery::find_user(&ctx.db, username.as_str())) {
        return Err(Failure::Failed(format!(
            "an account named \"{}\" already exists; to get into it, set a new password with \
             `hallpass recover reset-password --username {}`",
            existing.username, existing.username
        )));
    }
    let password = new_password(from_stdin, username.as_str())?;
    let hasher = ctx.hasher()?;
    let profile = Profile {
        username,
        email,
        display_name: None,
        role: Role::Admin,
    };
    let (user, _) = ctx.block(admin::create_user(
        &ctx.db,
        &hasher,
        recovery::actor(),
        profile,
        InitialPassword::Given(password),
    ))?;
    println!("Created \"{}\", an active admin.", user.username);
    ctx.warn_if_local_login_off()
}

fn change_standing(ctx: &Ctx, username: &str, force: bool, change: Change) -> Result<(), Failure> {
    let user = ctx.user(username)?;
    let (doing, gerund, done) = match change {
        Change::Delete => ("delete", "deleting", "deleted"),
        _ => ("disable", "disabling", "disabled"),
    };
    if !force {
        confirm(
            &format!(
                "This will {doing} \"{}\" ({}, {}) and end their sessions.",
                user.username, user.role, user.status
            ),
            &user.username,
        )?;
    }
    let hasher = ctx.hasher()?;
    match ctx.block(admin::apply(
        &ctx.db,
        &hasher,
        recovery::actor(),
        user.id,
        change,
    )) {
        Err(ServiceError::Policy(PolicyError::LastActiveAdmin)) => {
            return Err(Failure::Refused(format!(
                "\"{name}\" is the last active admin: {gerund} it would leave nobody able to \
                 administer Hallpass, so nothing was changed.\n\
                 Create another admin first:\n    \
                 hallpass recover create-admin --username NEW_NAME\n\
                 then run this again. (If the admin only lost its password:\n    \
                 hallpass recover reset-password --username {name})",
                name = user.username
            )));
        }
        other => {
            other?;
        }
    }
    println!(
        "\"{}\" is {done}; their sessions have ended. (An admin can undo this in \
         /admin/users.)",
        user.username
    );
    Ok(())
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The readable report of `recover status`.
fn render_status(config: &Config, o: &Overview) -> String {
    let mut out = format!(
        "Hallpass recovery status (database {})\n\nSign-in settings\n",
        config.database.url
    );
    let m = &o.modes;
    let why = if m.overridden {
        "HALLPASS_SSO_DISABLE_OVERRIDE is set"
    } else if !m.stored_sso {
        "SSO login is off"
    } else {
        "no SSO provider is enabled"
    };
    let local = if m.local == m.stored_local {
        on_off(m.local).to_owned()
    } else {
        format!(
            "{} as stored, {} in effect ({why})",
            on_off(m.stored_local),
            on_off(m.local)
        )
    };
    let stored_sso = match o.settings.sso_enabled {
        Some(b) => on_off(b).to_owned(),
        None if m.stored_sso => {
            "on (not set: on because providers come from the environment)".to_owned()
        }
        None => "off (not set: off while no provider comes from the environment)".to_owned(),
    };
    let sso = if m.sso == m.stored_sso {
        stored_sso
    } else {
        format!("{stored_sso} as stored, off in effect ({why})")
    };
    let registration = match (
        o.settings.registration_enabled,
        o.settings.auto_approve_registrations,
    ) {
        (false, _) => "off".to_owned(),
        (true, false) => "on (new accounts wait for approval)".to_owned(),
        (true, true) => "on (new accounts are active at once)".to_owned(),
    };
    out.push_str(&format!("  Password sign-in  {local}\n"));
    out.push_str(&format!("  SSO login         {sso}\n"));
    out.push_str(&format!("  Registration      {registration}\n"));
    out.push_str(&format!(
        "  Forward-auth      {} (auth.proxy.enabled in the configuration)\n",
        on_off(config.auth.proxy.enabled)
    ));
    out.push_str(&format!(
        "  Break-glass admin {} (HALLPASS_ADMIN_KEY in this environment)\n",
        if config.env_auth.break_glass.is_some() {
            "set"
        } else {
            "not set"
        }
    ));

    out.push_str("\nSSO providers\n");
    if o.providers.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .providers
            .iter()
            .map(|p| {
                let source = match (p.source, p.shadowed) {
                    (Source::Env, _) => "env",
                    (Source::Ui, false) => "stored",
                    (Source::Ui, true) => "stored (hidden by env)",
                };
                vec![
                    p.id.clone(),
                    source.to_owned(),
                    yes_no(p.enabled),
                    p.label.clone(),
                    p.issuer.clone(),
                    p.client_id.clone(),
                    p.policy.clone(),
                    if p.has_secret { "set" } else { "none" }.to_owned(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "ID",
                "SOURCE",
                "ENABLED",
                "LABEL",
                "ISSUER",
                "CLIENT ID",
                "POLICY",
                "CLIENT SECRET",
            ],
            &rows,
        );
    }

    out.push_str(&format!("\nAccounts ({})\n", o.accounts.len()));
    if o.accounts.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = o
            .accounts
            .iter()
            .map(|a| {
                let u = &a.user;
                let links: Vec<String> = a
                    .identities
                    .iter()
                    .map(|i| format!("{}:{}", i.provider, i.subject))
                    .collect();
                vec![
                    u.username.clone(),
                    u.role.to_string(),
                    if u.deleted_at.is_some() {
                        "deleted".to_owned()
                    } else {
                        u.status.to_string()
                    },
                    yes_no(u.password_hash.is_some()),
                    if links.is_empty() {
                        "-".to_owned()
                    } else {
                        links.join(", ")
                    },
                    u.last_login_at.map_or_else(|| "never".to_owned(), when),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "USERNAME",
                "ROLE",
                "STATUS",
                "PASSWORD",
                "LINKED IDENTITIES",
                "LAST SIGN-IN",
            ],
            &rows,
        );
    }

    let admins: Vec<&User> = o
        .accounts
        .iter()
        .map(|a| &a.user)
        .filter(|u| u.is_active_admin())
        .collect();
    out.push('\n');
    if admins.is_empty() {
        out.push_str(
            "No active admin. Create one: hallpass recover create-admin --username NAME\n",
        );
    } else {
        let names: Vec<&str> = admins.iter().map(|u| u.username.as_str()).collect();
        out.push_str(&format!("Active admins: {}\n", names.join(", ")));
        if admins.iter().all(|u| u.password_hash.is_none()) {
            out.push_str(&format!(
                "No active admin has a password. Give one a password: hallpass recover \
                 reset-password --username {}\n",
                names.first().copied().unwrap_or("NAME")
            ));
        }
    }
    if !m.local {
        out.push_str("Password sign-in is off. Turn it back on: hallpass recover enable-local\n");
    }
    out
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// A unix time as `2025-01-31 17:05 UTC`.
fn when(ts: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// Appends an aligned table, indented by two spaces.
fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = head
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (cell, width) in cells.iter().zip(&widths) {
            l.push(' ');
            l.push_str(cell);
            l.push_str(&" ".repeat(width.saturating_sub(cell.chars().count()) + 1));
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}
