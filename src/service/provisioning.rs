//! Signing in an identity another system vouched for — a forward-auth proxy's headers or a
//! verified OpenID Connect sign-in — and creating its account when the policy allows it.
//!
//! One path for both front ends: the identity is found by (provider, issuer, subject) only,
//! never by a matching username or email; a new account gets the policy's status, an email
//! no other account uses, and the identity that created it. What differs between the two
//! sources is said in [`Rules`], not in a second copy of this code.
//!
//! About 500 lines on purpose: the one path both front ends share, with the rules that tell
//! them apart (`Rules`), reads best in one file. (The groups claim's memberships are
//! written by `service::groups::sync_claim`, called from here inside the same transaction.)

use crate::db::{self, DbPool, audit, identities, users};
use crate::domain::audit::AuditAction;
use crate::domain::policy::{self, Standing};
use crate::domain::sso::{BootstrapPin, Policy};
use crate::domain::{Email, Role, Status, User, Username};
use crate::service::ServiceError;

/// What the source said about the caller.
#[derive(Debug, Clone)]
pub struct Source {
    /// The provider id (`proxy` for forward-auth).
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The username the source suggests (the proxy's user header, the username claim).
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl Source {
    /// How the audit log names the identity: `provider:subject`.
    fn target(&self) -> String {
        format!("{}:{}", self.provider, self.subject)
    }

    fn email(&self) -> Option<Email> {
        self.email.as_deref().and_then(|e| Email::parse(e).ok())
    }
}

/// How a new account gets its username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Exactly the suggested one (forward-auth: the proxy's user name is the subject). One
    /// that is not a valid username is refused, and so is one a local account has: that
    /// account is never taken over.
    AsSent,
    /// Derived from the username claim, the email's local part or `user`, made free with a
    /// number (OIDC: a provider's names are not ours).
    Derived,
}

/// How often the same identity signs in, which decides what is written and audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// On every request (forward-auth): read first, and write only when something changes
    /// or the last sign-in is older than `touch_every_secs`; audit changes, not sign-ins.
    PerRequest { touch_every_secs: i64 },
    /// A person signed in just now (OIDC): record and audit every sign-in and refusal.
    Interactive,
}

/// On an instance nobody can administer yet, the first identity becomes the admin.
#[derive(Debug, Clone, Default)]
pub struct FirstAdmin {
    /// Only this identity may (from the environment); `None`: the first one.
    pub pin: Option<BootstrapPin>,
    /// An admin that does not count (the dev bypass's).
    pub ignore_admin: Option<i64>,
}

impl FirstAdmin {
    /// Whether `source` becomes the admin: the instance is empty (nobody can administer it
    /// yet; accounts an unpinned identity made while waiting for the pinned one do not
    /// count) and the pin, if any, names this identity.
    fn applies(&self, conn: &mut db::Conn, source: &Source) -> Result<bool, db::DbError> {
        let empty = users::count_other_active_admins(conn, self.ignore_admin.unwrap_or(-1))? == 0;
        let (provider, subject) = (&source.provider, &source.subject);
        Ok(empty
            && self
                .pin
                .as_ref()
                .is_none_or(|p| p.matches(provider, subject, source.username.as_deref())))
    }
}

/// How the audit log names what a source does.
#[derive(Debug, Clone)]
pub struct AuditNames {
    /// The actor of the source's own writes (`proxy`); `None`: the account signing in, or
    /// `anonymous` before there is one.
    pub actor: Option<&'static str>,
    /// The action of sign-in events (`login.oidc`, `login.proxy`).
    pub login: AuditAction,
    /// How a new account's event says where it came from ("… policy via <via>").
    pub via: String,
}

/// What one source does differently: each front end states its rules here.
#[derive(Debug, Clone)]
pub struct Rules {
    pub policy: Policy,
    pub naming: Naming,
    /// The role group membership maps to: a new account gets it, and an existing one is
    /// moved to it at sign-in (never the last active admin away from admin). `None`: no
    /// mapping, new accounts are users.
    pub role: Option<Role>,
    /// Copy a changed email from the source at sign-in (when no other account uses it).
    pub sync_email: bool,
    /// `Some`: the first identity on an empty instance becomes the admin.
    pub first_admin: Option<FirstAdmin>,
    pub cadence: Cadence,
    pub audit: AuditNames,
    /// The group names the source's groups claim sent: at each sign-in they refresh the
    /// memberships this source made (see `service::groups::sync_claim`). `None`: the
    /// source reads no groups claim, and memberships are left alone.
    pub groups: Option<Vec<String>>,
}

impl Rules {
    fn interactive(&self) -> bool {
        self.cadence == Cadence::Interactive
    }

    /// Whether signing `user` in would change the account (role mapping, email).
    fn changes(&self, user: &User, source: &Source) -> bool {
        self.role.is_some_and(|r| r != user.role) || self.new_email(user, source).is_some()
    }

    fn new_email(&self, user: &User, source: &Source) -> Option<Email> {
        source
            .email()
            .filter(|e| self.sync_email && user.email.as_deref() != Some(e.as_str()))
    }
}

/// Why an identity was not signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// No account is linked and the policy is `link`.
    NotLinked,
    /// The linked account is disabled or deleted.
    AccountDisabled,
    /// [`Naming::AsSent`]: a local account has this username; it is not merged.
    ExistingAccount,
    /// No usable username: the one sent is not valid ([`Naming::AsSent`]) or none could be
    /// derived ([`Naming::Derived`]).
    NoUsername,
}

/// A successful sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    /// The account was created just now (by policy or as the first admin).
    pub created: bool,
    pub first_admin: bool,
}

impl SignedIn {
    fn existing(user: User) -> Self {
        Self {
            user,
            created: false,
            first_admin: false,
        }
    }
}

type Outcome = Result<SignedIn, SignInRefusal>;

/// Signs in the identity `source` vouches for: its linked account, or a new one as `rules`
/// allow. Writes run in one locked transaction, so two first sign-ins make one account
/// (and one first admin).
pub async fn sign_in(
    db: &DbPool,
    source: Source,
    rules: Rules,
    ip: Option<String>,
) -> Result<Outcome, ServiceError> {
    if let Cadence::PerRequest { touch_every_secs } = rules.cadence {
        // The hot path: most requests find an unchanged, recently recorded account and
        // write nothing.
        let (s, claimed) = (source.clone(), rules.groups.clone());
        let (found, groups_move) = db
            .run(move |conn| {
                let found = identities::find(conn, &s.provider, &s.issuer, &s.subject)?;
                let groups_move = match (&found, &claimed) {
                    (Some((_, u)), Some(names)) => {
                        !super::groups::claim_changes(conn, u.id, &s.provider, names)?.is_empty()
                    }
                    _ => false,
                };
                Ok::<_, db::DbError>((found, groups_move))
            })
            .await?;
        match found {
            Some((_, user)) if !user.may_sign_in() => {
                return Ok(Err(SignInRefusal::AccountDisabled));
            }
            Some((_, user)) => {
                let stale = user
                    .last_login_at
                    .is_none_or(|t| db::now_ts() - t > touch_every_secs);
                if !stale && !groups_move && !rules.changes(&user, &source) {
                    return Ok(Ok(SignedIn::existing(user)));
                }
            }
            None if rules.policy == Policy::Link && rules.first_admin.is_none() => {
                tracing::warn!(provider = %source.provider, subject = %source.subject, "sign-in rejected: no linked account for this identity");
                return Ok(Err(SignInRefusal::NotLinked));
            }
            None => {}
        }
    }
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let ip = ip.as_deref();
            match identities::find(conn, &source.provider, &source.issuer, &source.subject)? {
                Some((link, user)) => sign_in_linked(conn, link.id, user, &source, &rules, ip),
                None => create(conn, &source, &rules, ip),
            }
        })
    })
    .await
}

/// Writes the audit events of one sign-in, named as the source's [`AuditNames`] say.
struct Events<'a> {
    rules: &'a Rules,
    ip: Option<&'a str>,
}

impl Events<'_> {
    fn insert(
        &self,
        conn: &mut db::Conn,
        by: Option<&User>,
        action: AuditAction,
        target: &str,
        outcome: &str,
        detail: &str,
    ) -> Result<(), db::DbError> {
        let names = &self.rules.audit;
        let actor = match by {
            Some(u) => names.actor.unwrap_or(&u.username),
            None => names.actor.unwrap_or("anonymous"),
        };
        audit::insert(
            conn,
            &audit::NewEvent {
                actor_id: by.map(|u| u.id),
                actor,
                action,
                target: Some(target),
                ip: self.ip,
                outcome,
                detail: Some(detail),
            },
        )
    }

    /// A change the source made to an account (by the source, not by the account).
    fn updated(&self, conn: &mut db::Conn, user: &User, detail: &str) -> Result<(), db::DbError> {
        let target = &user.username;
        self.insert(
            conn,
            None,
            AuditAction::UserUpdate,
            target,
            "success",
            detail,
        )
    }

    /// A refused sign-in (recorded for interactive sign-ins only, or when `always`).
    fn refused(
        &self,
        conn: &mut db::Conn,
        target: &str,
        detail: &str,
        always: bool,
    ) -> Result<(), db::DbError> {
        if !always && !self.rules.interactive() {
            return Ok(());
        }
        let login = self.rules.audit.login;
        self.insert(conn, None, login, target, "failure", detail)
    }

    /// A successful sign-in (interactive sign-ins only).
    fn signed_in(
        &self,
        conn: &mut db::Conn,
        user: &User,
        source: &Source,
    ) -> Result<(), db::DbError> {
        if !self.rules.interactive() {
            return Ok(());
        }
        let (login, detail) = (self.rules.audit.login, source.target());
        self.insert(conn, Some(user), login, &user.username, "success", &detail)
    }
}

fn sign_in_linked(
    conn: &mut db::Conn,
    link_id: i64,
    mut user: User,
    source: &Source,
    rules: &Rules,
    ip: Option<&str>,
) -> Result<Outcome, ServiceError> {
    let events = Events { rules, ip };
    if !user.may_sign_in() {
        events.refused(conn, &user.username, "account disabled", false)?;
        return Ok(Err(SignInRefusal::AccountDisabled));
    }
    if let Some(role) = rules.role.filter(|r| *r != user.role) {
        apply_role(conn, &mut user, role, source, &events)?;
    }
    if let Some(email) = rules.new_email(&user, source)
        && !users::email_in_use(conn, &email.key())?
    {
        let username = Username::parse(&user.username).map_err(|m| {
            ServiceError::Db(db::DbError::Corrupt {
                table: "users",
                detail: m,
            })
        })?;
        let name = user.display_name.as_deref();
        users::set_profile(conn, user.id, &username, Some(&email), name)?;
        let detail = format!("email updated from the {}", source.provider);
        events.updated(conn, &user, &detail)?;
        user.email = Some(email.as_str().to_owned());
    }
    sync_groups(conn, &user, source, rules, ip)?;
    let (email, name) = (source.email.as_deref(), source.display_name.as_deref());
    identities::touch(conn, link_id, email, name)?;
    users::record_login(conn, user.id, None)?;
    user.last_login_at = Some(db::now_ts());
    events.signed_in(conn, &user, source)?;
    Ok(Ok(SignedIn::existing(user)))
}

/// Moves `user` to the role group membership maps to, unless that removes the last active
/// admin ([`policy::check_last_admin`], counted inside this transaction): then the role is
/// kept and the sign-in goes on.
fn apply_role(
    conn: &mut db::Conn,
    user: &mut User,
    role: Role,
    source: &Source,
    events: &Events<'_>,
) -> Result<(), ServiceError> {
    let after = Standing {
        role,
        ..Standing::of(user)
    };
    let others = users::count_other_active_admins(conn, user.id)?;
    if policy::check_last_admin(user, after, others).is_err() {
        tracing::warn!(user = %user.username, "group mapping would demote the last active admin; role kept");
        return Ok(());
    }
    users::set_standing(conn, user.id, role, user.status, user.deleted_at, false)?;
    let detail = format!("role {} -> {role} ({} groups)", user.role, source.provider);
    events.updated(conn, user, &detail)?;
    user.role = role;
    Ok(())
}

/// Refreshes the memberships the source's groups claim gives `user`, when it has one.
fn sync_groups(
    conn: &mut db::Conn,
    user: &User,
    source: &Source,
    rules: &Rules,
    ip: Option<&str>,
) -> Result<(), db::DbError> {
    let Some(claimed) = &rules.groups else {
        return Ok(());
    };
    let actor = super::Actor {
        user_id: None,
        name: rules.audit.actor.unwrap_or(&source.provider).to_owned(),
        ip: ip.map(str::to_owned),
        session: None,
    };
    super::groups::sync_claim(conn, &actor, user, &source.provider, claimed)
}

fn create(
    conn: &mut db::Conn,
    source: &Source,
    rules: &Rules,
    ip: Option<&str>,
) -> Result<Outcome, ServiceError> {
    let events = Events { rules, ip };
    let target = source.target();
    let first_admin = match &rules.first_admin {
        Some(f) => f.applies(conn, source)?,
        None => false,
    };
    let (role, status) = if first_admin {
        (Role::Admin, Status::Active)
    } else {
        let role = rules.role.unwrap_or(Role::User);
        match rules.policy {
            Policy::Link => {
                events.refused(conn, &target, "no linked account", false)?;
                return Ok(Err(SignInRefusal::NotLinked));
            }
            Policy::Approve => (role, Status::Pending),
            Policy::Auto => (role, Status::Active),
        }
    };
    let username = match username_for(conn, source, rules.naming, &events)? {
        Ok(u) => u,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // An email another account uses is not copied: that would be a silent merge hint and
    // break the unique index.
    let email = source
        .email()
        .filter(|e| matches!(users::email_in_use(conn, &e.key()), Ok(false)));
    let user = users::insert(
        conn,
        &users::NewUser {
            username: &username,
            email: email.as_ref(),
            display_name: source.display_name.as_deref(),
            role,
            status,
            password_hash: None,
            created_by: None,
        },
    )?;
    identities::insert(
        conn,
        &identities::NewIdentity {
            user_id: user.id,
            provider: &source.provider,
            issuer: &source.issuer,
            subject: &source.subject,
            email: source.email.as_deref(),
            display_name: source.display_name.as_deref(),
        },
    )?;
    users::record_login(conn, user.id, None)?;
    sync_groups(conn, &user, source, rules, ip)?;
    let via = &rules.audit.via;
    let why = if first_admin {
        format!("first admin via {via}")
    } else {
        format!("{} policy via {via}", rules.policy)
    };
    let name = &user.username;
    events.insert(
        conn,
        Some(&user),
        AuditAction::UserCreate,
        name,
        "success",
        &why,
    )?;
    events.signed_in(conn, &user, source)?;
    Ok(Ok(SignedIn {
        user,
        created: true,
        first_admin,
    }))
}

/// The username of a new account, by `naming`.
fn username_for(
    conn: &mut db::Conn,
    source: &Source,
    naming: Naming,
    events: &Events<'_>,
) -> Result<Result<Username, SignInRefusal>, ServiceError> {
    let derived = match naming {
        Naming::Derived => derive_username(conn, source)?,
        Naming::AsSent => {
            let sent = source.username.as_deref().unwrap_or_default();
            let Ok(username) = Username::parse(sent) else {
                tracing::warn!(provider = %source.provider, user = %sent, "sign-in rejected: the username sent is not a valid username");
                return no_username(conn, source, events);
            };
            let (taken, _) = users::taken(conn, None, &username.key(), None)?;
            if taken || users::name_reserved(conn, &username.key())? {
                tracing::warn!(provider = %source.provider, user = %sent, "sign-in rejected: a local account with this username exists and is not merged; link it explicitly");
                let detail = "existing local account, not merged";
                // Always recorded: someone may be trying to take an account over.
                events.refused(conn, username.as_str(), detail, true)?;
                return Ok(Err(SignInRefusal::ExistingAccount));
            }
            Some(username)
        }
    };
    match derived {
        Some(u) => Ok(Ok(u)),
        None => no_username(conn, source, events),
    }
}

fn no_username(
    conn: &mut db::Conn,
    source: &Source,
    events: &Events<'_>,
) -> Result<Result<Username, SignInRefusal>, ServiceError> {
    events.refused(conn, &source.target(), "no usable username claim", false)?;
    Ok(Err(SignInRefusal::NoUsername))
}

/// A free username from the username claim, the email's local part, or `user`.
fn derive_username(conn: &mut db::Conn, source: &Source) -> Result<Option<Username>, ServiceError> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(u) = &source.username {
        candidates.push(u.clone());
    }
    if let Some(e) = &source.email
        && let Some((local, _)) = e.split_once('@')
    {
        candidates.push(local.to_owned());
    }
    candidates.push("user".to_owned());
    for raw in candidates {
        let slug: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .skip_while(|c| !c.is_ascii_alphanumeric())
            .take(Username::MAX)
            .collect();
        let slug = if slug.len() < Username::MIN {
            format!("{slug}-user")
        } else {
            slug
        };
        if let Ok(base) = Username::parse(&slug)
            && let Some(free) = users::free_username(conn, &base)?
        {
            return Ok(Some(free));
        }
    }
    Ok(None)
}
