//! Who an identity is: signing in through a provider (by its provisioning policy), linking
//! and unlinking. Subjects are matched on (provider, issuer, subject) only — never by email
//! or username.

use super::oidc::VerifiedIdentity;
use crate::db::{self, DbPool, identities, settings, users};
use crate::domain::audit::AuditAction;
use crate::domain::sso::{self, LinkedIdentity, Provider, SignInMethods, UnlinkEffect};
use crate::service::provisioning::{self, AuditNames, Cadence, FirstAdmin, Naming, Rules, Source};
use crate::service::{Actor, Missing, Refusal, ServiceError};
use crate::sso_env::SsoEnv;

pub use crate::service::provisioning::{SignInRefusal, SignedIn};

/// Signs a verified identity in: its linked account, or a new one by the provider's policy.
/// On an empty instance the first identity becomes the admin (unless the environment pins
/// who that is). The one provisioning path ([`provisioning::sign_in`]) with OIDC's rules.
pub async fn sign_in(
    db: &DbPool,
    env: &SsoEnv,
    provider: &Provider,
    who: VerifiedIdentity,
    ip: Option<String>,
    ignore_admin: Option<i64>,
) -> Result<Result<SignedIn, SignInRefusal>, ServiceError> {
    let rules = Rules {
        policy: provider.policy,
        // A provider's names are not ours: derive a free one.
        naming: Naming::Derived,
        role: None,
        sync_email: false,
        first_admin: Some(FirstAdmin {
            pin: env.bootstrap_admin.clone(),
            ignore_admin,
        }),
        cadence: Cadence::Interactive,
        audit: AuditNames {
            actor: None,
            login: AuditAction::LoginOidc,
            via: format!("{}:{}", provider.id, who.subject),
        },
        groups: who.groups,
    };
    let source = Source {
        provider: provider.id.clone(),
        issuer: who.issuer,
        subject: who.subject,
        username: who.username,
        email: who.email,
        display_name: who.display_name,
    };
    provisioning::sign_in(db, source, rules, ip).await
}

/// Links an identity to a user and ends the user's sessions (but the caller's own, when the
/// user links themselves and the actor carries its session: see [`Actor::keeping`]). `subject` comes from a verified sign-in ("Verify & Link") or
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
    let caller = actor.clone();
    let version = db
        .run(move |conn| {
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
                let target = Some(user.username.as_str());
                crate::service::audit::record(
                    conn,
                    &actor,
                    AuditAction::IdentityLink,
                    target,
                    Some(&detail),
                )?;
                Ok::<_, ServiceError>(version)
            })
        })
        .await?;
    caller.keep_own_session(user_id, version).await?;
    Ok(version)
}

/// What unlinking did.
#[derive(Debug, Clone, Copy)]
pub struct Unlinked {
    pub user_id: i64,
    pub effect: UnlinkEffect,
    pub new_session_version: i64,
}

/// Removes a link unless it is the account's last way in; removing your own last identity
/// while password sign-in is off turns password sign-in back on. Ends the account's
/// sessions, but keeps the caller's own when it unlinks from its own account.
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
    let caller = actor.clone();
    let done = db
        .run(move |conn| {
            db::write_tx(conn, |conn| {
                let link = identities::get(conn, identity_id)?
                    .ok_or(ServiceError::from(Missing::Identity))?;
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
                        passkeys: crate::db::passkeys::for_user(conn, user.id)?.len(),
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
                let target = Some(user.username.as_str());
                crate::service::audit::record(
                    conn,
                    &actor,
                    AuditAction::IdentityUnlink,
                    target,
                    Some(&detail),
                )?;
                Ok::<_, ServiceError>(Unlinked {
                    user_id: user.id,
                    effect,
                    new_session_version: version,
                })
            })
        })
        .await?;
    caller
        .keep_own_session(done.user_id, done.new_session_version)
        .await?;
    Ok(done)
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

/// Which admin form names the identity: an OpenID subject, or the user name a forward-auth
/// proxy sends (the field and the message by it differ; the rules do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectField {
    Oidc,
    Proxy,
}

impl SubjectField {
    fn name(self) -> &'static str {
        match self {
            SubjectField::Oidc => "subject",
            SubjectField::Proxy => "proxy_user",
        }
    }

    fn missing(self) -> &'static str {
        match self {
            SubjectField::Oidc => "Enter the subject (sub) of the identity.",
            SubjectField::Proxy => "Enter the user name the proxy sends.",
        }
    }
}

/// An admin links `subject` at `(provider id, issuer)` to the account named `username`
/// (or its email): the admin pages' manual link and the API's, with the same field errors.
/// Returns the new link as the admin screens list it.
pub async fn link_named(
    db: &DbPool,
    actor: Actor,
    at: (&str, &str),
    field: SubjectField,
    subject: &str,
    username: &str,
) -> Result<LinkView, ServiceError> {
    let mut errors = crate::domain::FieldErrors::new();
    if subject.trim().is_empty() {
        errors.add(field.name(), field.missing());
    }
    let target = match username.trim() {
        "" => {
            errors.add("username", "Enter the username of the account to link.");
            None
        }
        name => super::lookup::link_target(db, name).await?,
    };
    if target.is_none() && errors.get("username").is_none() {
        errors.add("username", "No account has this username.");
    }
    let Some(user) = target.filter(|_| errors.is_empty()) else {
        return Err(ServiceError::Validation(errors));
    };
    link_at(db, actor, at, user.id, subject, None)
        .await
        .map_err(|e| match e {
            // The subject's own rule, reported by the form's name for it.
            ServiceError::Validation(f) if field == SubjectField::Proxy => {
                ServiceError::Validation(f.renamed("subject", field.name()))
            }
            e => e,
        })?;
    let (provider, issuer, subject) = (at.0.to_owned(), at.1.to_owned(), subject.trim().to_owned());
    let found = db
        .run(move |conn| identities::find(conn, &provider, &issuer, &subject))
        .await?
        .ok_or(ServiceError::Internal("a link just made is missing"))?;
    Ok(LinkView {
        identity: found.0,
        username: found.1.username,
        stale: false,
    })
}
