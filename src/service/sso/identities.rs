//! Who an identity is: signing in through a provider (by its provisioning policy), linking
//! and unlinking. Subjects are matched on (provider, issuer, subject) only — never by email
//! or username.

use super::oidc::VerifiedIdentity;
use crate::db::{self, DbPool, audit, identities, settings, users};
use crate::domain::sso::{
    self, BootstrapPin, LinkedIdentity, Policy, Provider, SignInMethods, UnlinkEffect,
};
use crate::domain::{Email, Role, Status, User, Username};
use crate::service::{Actor, Missing, Refusal, ServiceError};
use crate::sso_env::SsoEnv;

/// Why a verified identity may not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// No account is linked and the provider's policy is `link`.
    NotLinked,
    /// The linked account is disabled or deleted.
    AccountDisabled,
    /// An account had to be created but no username could be derived.
    NoUsername,
}

/// A successful SSO sign-in.
#[derive(Debug)]
pub struct SignedIn {
    pub user: User,
    /// The account was created just now (by policy or as the first admin).
    pub created: bool,
    pub first_admin: bool,
}

fn event<'a>(
    actor_id: Option<i64>,
    actor: &'a str,
    action: &'a str,
    target: Option<&'a str>,
    ip: Option<&'a str>,
    outcome: &'a str,
    detail: Option<&'a str>,
) -> audit::NewEvent<'a> {
    audit::NewEvent {
        actor_id,
        actor,
        action,
        target,
        ip,
        outcome,
        detail,
    }
}

/// Signs a verified identity in: its linked account, or a new one by the provider's policy.
/// On an empty instance the first identity becomes the admin (unless the environment pins
/// who that is). Runs in one locked transaction, so two first sign-ins make one admin.
pub async fn sign_in(
    db: &DbPool,
    env: &SsoEnv,
    provider: &Provider,
    who: VerifiedIdentity,
    ip: Option<String>,
    ignore_admin: Option<i64>,
) -> Result<Result<SignedIn, SignInRefusal>, ServiceError> {
    let provider = provider.clone();
    let pin = env.bootstrap_admin.clone();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let ip = ip.as_deref();
            let target = format!("{}:{}", provider.id, who.subject);
            if let Some((link, user)) =
                identities::find(conn, &provider.id, &who.issuer, &who.subject)?
            {
                if !user.may_sign_in() {
                    audit::insert(
                        conn,
                        &event(
                            None,
                            "anonymous",
                            "login.oidc",
                            Some(&user.username),
                            ip,
                            "failure",
                            Some("account disabled"),
                        ),
                    )?;
                    return Ok(Err(SignInRefusal::AccountDisabled));
                }
                identities::touch(
                    conn,
                    link.id,
                    who.email.as_deref(),
                    who.display_name.as_deref(),
                )?;
                users::record_login(conn, user.id, None)?;
                audit::insert(
                    conn,
                    &event(
                        Some(user.id),
                        &user.username,
                        "login.oidc",
                        Some(&user.username),
                        ip,
                        "success",
                        Some(&target),
                    ),
                )?;
                return Ok(Ok(SignedIn {
                    user,
                    created: false,
                    first_admin: false,
                }));
            }
            // "Empty" = nobody can administer it yet (accounts an unpinned identity created
            // while waiting for the pinned one do not count).
            // The dev bypass's admin does not count either.
            let empty = users::count_other_active_admins(conn, ignore_admin.unwrap_or(-1))? == 0;
            let pinned_ok = |pin: &Option<BootstrapPin>| match pin {
                None => true,
                Some(p) => p.matches(&provider.id, &who.subject, who.username.as_deref()),
            };
            let (role, status, first_admin) = if empty && pinned_ok(&pin) {
                (Role::Admin, Status::Active, true)
            } else {
                match provider.policy {
                    Policy::Link => {
                        audit::insert(
                            conn,
                            &event(
                                None,
                                "anonymous",
                                "login.oidc",
                                Some(&target),
                                ip,
                                "failure",
                                Some("no linked account"),
                            ),
                        )?;
                        return Ok(Err(SignInRefusal::NotLinked));
                    }
                    Policy::Approve => (Role::User, Status::Pending, false),
                    Policy::Auto => (Role::User, Status::Active, false),
                }
            };
            let Some(username) = derive_username(conn, &who)? else {
                audit::insert(
                    conn,
                    &event(
                        None,
                        "anonymous",
                        "login.oidc",
                        Some(&target),
                        ip,
                        "failure",
                        Some("no usable username claim"),
                    ),
                )?;
                return Ok(Err(SignInRefusal::NoUsername));
            };
            // An email another account uses is not copied: that would be a silent merge hint
            // and break the unique index.
            let email = who
                .email
                .as_deref()
                .and_then(|e| Email::parse(e).ok())
                .filter(|e| matches!(users::email_in_use(conn, &e.key()), Ok(false)));
            let user = users::insert(
                conn,
                &users::NewUser {
                    username: &username,
                    email: email.as_ref(),
                    display_name: who.display_name.as_deref(),
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
                    provider: &provider.id,
                    issuer: &who.issuer,
                    subject: &who.subject,
                    email: who.email.as_deref(),
                    display_name: who.display_name.as_deref(),
                },
            )?;
            users::record_login(conn, user.id, None)?;
            let why = if first_admin {
                format!("first admin via {target}")
            } else {
                format!("{} policy via {target}", provider.policy)
            };
            audit::insert(
                conn,
                &event(
                    Some(user.id),
                    &user.username,
                    "user.create",
                    Some(&user.username),
                    ip,
                    "success",
                    Some(&why),
                ),
            )?;
            audit::insert(
                conn,
                &event(
                    Some(user.id),
                    &user.username,
                    "login.oidc",
                    Some(&user.username),
                    ip,
                    "success",
                    Some(&target),
                ),
            )?;
            Ok(Ok(SignedIn {
                user,
                created: true,
                first_admin,
            }))
        })
    })
    .await
}

fn derive_username(
    conn: &mut db::Conn,
    who: &VerifiedIdentity,
) -> Result<Option<Username>, ServiceError> {
    let mut candidates: Vec<String> = Vec::new();
    if let Some(u) = &who.username {
        candidates.push(u.clone());
    }
    if let Some(e) = &who.email
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

/// Links an identity to a user and ends the user's sessions (the caller renews its own when
/// the user links themselves). `subject` comes from a verified sign-in ("Verify & Link") or
/// was pasted by an admin.
pub async fn link(
    db: &DbPool,
    actor: Actor,
    provider: &Provider,
    user_id: i64,
    subject: &str,
    claims: Option<&VerifiedIdentity>,
) -> Result<i64, ServiceError> {
    link_at(
        db,
        actor,
        (&provider.id, &provider.issuer),
        user_id,
        subject,
        claims,
    )
    .await
}

/// [`link`] for any `(provider id, issuer)`, e.g. forward-auth identities (`proxy`).
pub async fn link_at(
    db: &DbPool,
    actor: Actor,
    (provider_id, issuer): (&str, &str),
    user_id: i64,
    subject: &str,
    claims: Option<&VerifiedIdentity>,
) -> Result<i64, ServiceError> {
    if user_id == crate::env_auth::BREAK_GLASS_ID {
        return Err(Refusal::BreakGlassIdentities.into());
    }
    let subject = subject.trim().to_owned();
    if subject.is_empty()
        || subject.len() > sso::MAX_SUBJECT
        || subject.chars().any(char::is_control)
    {
        return Err(ServiceError::Validation(
            crate::domain::FieldErrors::single(
                "subject",
                "Enter the subject (the `sub` claim) exactly as the provider shows it, at most 255 characters.",
            ),
        ));
    }
    let provider_id = provider_id.to_owned();
    let issuer = issuer.to_owned();
    let email = claims.and_then(|c| c.email.clone());
    let name = claims.and_then(|c| c.display_name.clone());
    let how = if claims.is_some() {
        "verified"
    } else {
        "manual"
    };
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let user = users::find_by_id(conn, user_id)?
                .filter(|u| u.deleted_at.is_none())
                .ok_or(ServiceError::from(Missing::Account))?;
            if let Some((_, owner)) = identities::find(conn, &provider_id, &issuer, &subject)? {
                if owner.id == user.id {
                    return Err(Refusal::AlreadyLinked(owner.username).into());
                }
                return Err(Refusal::IdentityTaken(owner.username).into());
            }
            identities::insert(
                conn,
                &identities::NewIdentity {
                    user_id: user.id,
                    provider: &provider_id,
                    issuer: &issuer,
                    subject: &subject,
                    email: email.as_deref(),
                    display_name: name.as_deref(),
                },
            )?;
            let version = users::bump_session_version(conn, user.id)?;
            let detail = format!("{provider_id}:{subject} ({how})");
            audit::insert(
                conn,
                &event(
                    actor.user_id,
                    &actor.name,
                    "identity.link",
                    Some(&user.username),
                    actor.ip.as_deref(),
                    "success",
                    Some(&detail),
                ),
            )?;
            Ok(version)
        })
    })
    .await
}

/// What unlinking did.
#[derive(Debug, Clone, Copy)]
pub struct Unlinked {
    pub user_id: i64,
    pub effect: UnlinkEffect,
    pub new_session_version: i64,
}

/// Removes a link unless it is the account's last way in; removing your own last identity
/// while password sign-in is off turns password sign-in back on.
pub async fn unlink(
    db: &DbPool,
    env: &SsoEnv,
    providers: &[Provider],
    actor: Actor,
    identity_id: i64,
) -> Result<Unlinked, ServiceError> {
    let current: Vec<(String, String)> = providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| (p.id.clone(), p.issuer.clone()))
        .collect();
    let env = env.clone();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let link =
                identities::get(conn, identity_id)?.ok_or(ServiceError::from(Missing::Identity))?;
            let user = users::find_by_id(conn, link.user_id)?
                .ok_or(ServiceError::from(Missing::Account))?;
            let s = settings::get(conn)?;
            let modes = super::SignInModes::of(&s, &env);
            let other_usable = identities::for_user(conn, user.id)?
                .iter()
                .filter(|i| i.id != link.id)
                .filter(|i| {
                    modes.sso
                        && current
                            .iter()
                            .any(|(id, issuer)| *id == i.provider && *issuer == i.issuer)
                })
                .count();
            let is_self = actor.user_id == Some(user.id);
            let effect = sso::check_unlink(
                SignInMethods {
                    has_password: user.password_hash.is_some(),
                    local_login: modes.local,
                    other_usable_identities: other_usable,
                },
                is_self,
            )
            .map_err(Refusal::LastSignInMethod)?;
            identities::delete(conn, link.id)?;
            let version = users::bump_session_version(conn, user.id)?;
            if effect == UnlinkEffect::TurnsLocalLoginOn {
                settings::set_sign_in(conn, true, modes.stored_sso)?;
            }
            let mut detail = format!("{}:{}", link.provider, link.subject);
            if effect == UnlinkEffect::TurnsLocalLoginOn {
                detail.push_str("; password sign-in turned back on");
            }
            audit::insert(
                conn,
                &event(
                    actor.user_id,
                    &actor.name,
                    "identity.unlink",
                    Some(&user.username),
                    actor.ip.as_deref(),
                    "success",
                    Some(&detail),
                ),
            )?;
            Ok(Unlinked {
                user_id: user.id,
                effect,
                new_session_version: version,
            })
        })
    })
    .await
}

/// A link as the admin screens show it.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub identity: LinkedIdentity,
    pub username: String,
    /// Made under another issuer than the provider's current one: it no longer matches.
    pub stale: bool,
}

pub async fn for_provider(db: &DbPool, provider: &Provider) -> Result<Vec<LinkView>, ServiceError> {
    let id = provider.id.clone();
    let issuer = provider.issuer.clone();
    let links = db
        .run(move |conn| identities::for_provider(conn, &id))
        .await?;
    Ok(links
        .into_iter()
        .map(|(identity, username)| LinkView {
            stale: identity.issuer != issuer,
            identity,
            username,
        })
        .collect())
}

pub async fn for_user(db: &DbPool, user_id: i64) -> Result<Vec<LinkedIdentity>, ServiceError> {
    Ok(db
        .run(move |conn| identities::for_user(conn, user_id))
        .await?)
}
