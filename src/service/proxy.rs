//! Forward-auth sign-in: the identity a trusted reverse proxy vouches for, bound through the
//! identities table (provider `proxy`) — never by a matching username or email.

use std::sync::RwLock;

use super::{Refusal, Revertible, ServiceError};
use crate::config::ProxyConfig;
use crate::db::{self, DbPool, audit, identities, settings, users};
use crate::domain::proxy::{HeaderNames, Preset, ProxyIdentity, role_for_groups};
use crate::domain::sso::{PROXY_PROVIDER, Policy};
use crate::domain::{Email, Role, Status, User, Username};

/// The issuer recorded for proxy identities (there is no issuer URL).
pub const PROXY_ISSUER: &str = "proxy";

/// How often a proxied request records "last sign-in" (not on every request).
const TOUCH_EVERY_SECS: i64 = 300;

/// Why a proxy identity was not signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRefusal {
    /// Policy `link` and nobody linked this identity.
    NotLinked,
    /// A local account already has this username: it is not merged.
    ExistingAccount,
    /// The linked account is disabled or deleted.
    AccountDisabled,
    /// The header value is not a usable username.
    BadUsername,
}

impl ProxyRefusal {
    pub fn message(self) -> &'static str {
        match self {
            ProxyRefusal::NotLinked => {
                "Your proxy identity is not linked to an account here. Ask an administrator to link it."
            }
            ProxyRefusal::ExistingAccount => {
                "Your proxy user name belongs to an existing local account, which is never taken over automatically. Ask an administrator to link it."
            }
            ProxyRefusal::AccountDisabled => "This account is disabled.",
            ProxyRefusal::BadUsername => {
                "The user name your proxy sent cannot be used as a Hallpass username."
            }
        }
    }
}

/// The header preset chosen in the admin UI, kept in memory (read on every proxied request).
#[derive(Debug, Default)]
pub struct ProxyRuntime {
    preset: RwLock<Option<Preset>>,
}

impl ProxyRuntime {
    pub fn new(preset: Option<Preset>) -> Self {
        Self {
            preset: RwLock::new(preset),
        }
    }

    pub fn preset(&self) -> Option<Preset> {
        self.preset.read().ok().and_then(|p| *p)
    }

    /// The header names in force: the UI's preset, else the configuration's.
    pub fn headers(&self, cfg: &ProxyConfig) -> HeaderNames {
        match self.preset() {
            Some(p) => p.headers(),
            None => cfg.configured_headers(),
        }
    }

    fn set(&self, preset: Option<Preset>) {
        if let Ok(mut p) = self.preset.write() {
            *p = preset;
        }
    }
}

/// Loads the stored preset at start-up.
pub fn load_preset(db: &DbPool) -> Result<Option<Preset>, ServiceError> {
    let raw = db.run_blocking(settings::proxy_preset)?;
    Ok(raw.as_deref().and_then(Preset::parse))
}

/// How the revert snapshot writes "the configured headers" (no preset).
const CONFIGURED: &str = "config";

fn encode(preset: Option<Preset>) -> &'static str {
    preset.map_or(CONFIGURED, Preset::as_str)
}

/// The preset a snapshot names: `Some(None)` for the configured headers, `None` when the
/// snapshot is unreadable.
fn decode(raw: &str) -> Option<Option<Preset>> {
    if raw == CONFIGURED {
        Some(None)
    } else {
        Preset::parse(raw).map(Some)
    }
}

fn label(preset: Option<Preset>) -> &'static str {
    preset.map_or("configured headers", Preset::as_str)
}

/// The preset the last change replaced, which "Revert to previous" would bring back
/// (`Some(None)`: the configured headers); `None` when there is nothing to revert to.
pub async fn previous_preset(db: &DbPool) -> Result<Option<Option<Preset>>, ServiceError> {
    let raw = db.run(settings::proxy_preset_previous).await?;
    Ok(raw.as_deref().and_then(decode))
}

/// Stores the preset chosen in the admin UI (`None`: back to the configured headers). A
/// change keeps the preset it replaces for "Revert to previous"; choosing the preset already
/// in force writes nothing, so the snapshot stays the last real change.
pub async fn set_preset(
    db: &DbPool,
    runtime: &ProxyRuntime,
    actor: super::Actor,
    preset: Option<Preset>,
) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let current = settings::proxy_preset(conn)?
                .as_deref()
                .and_then(Preset::parse);
            if current == preset {
                return Ok::<(), ServiceError>(());
            }
            settings::set_proxy_preset_previous(conn, Some(encode(current)))?;
            settings::set_proxy_preset(conn, preset.map(Preset::as_str))?;
            let detail = format!("{} -> {}", label(current), label(preset));
            audit_preset_change(conn, &actor, &detail)?;
            Ok(())
        })
    })
    .await?;
    runtime.set(preset);
    Ok(())
}

/// The audit event of a preset change or revert (`detail`: "old -> new").
fn audit_preset_change(
    conn: &mut db::Conn,
    actor: &super::Actor,
    detail: &str,
) -> Result<(), crate::db::DbError> {
    audit::insert(
        conn,
        &audit::NewEvent {
            actor_id: actor.user_id,
            actor: &actor.name,
            action: "settings.proxy_preset",
            target: Some("instance"),
            ip: actor.ip.as_deref(),
            outcome: "success",
            detail: Some(detail),
        },
    )
}

/// Brings back the preset the last change replaced and clears the snapshot: one step of
/// undo, like a provider's "Revert to previous".
pub async fn revert_preset(
    db: &DbPool,
    runtime: &ProxyRuntime,
    actor: super::Actor,
) -> Result<Option<Preset>, ServiceError> {
    let restored = db
        .run(move |conn| {
            db::write_tx(conn, |conn| {
                let restored = settings::proxy_preset_previous(conn)?
                    .as_deref()
                    .and_then(decode)
                    .ok_or(Refusal::NothingToRevert(Revertible::ProxyPreset))?;
                let current = settings::proxy_preset(conn)?
                    .as_deref()
                    .and_then(Preset::parse);
                settings::set_proxy_preset(conn, restored.map(Preset::as_str))?;
                settings::set_proxy_preset_previous(conn, None)?;
                let detail = format!("reverted: {} -> {}", label(current), label(restored));
                audit_preset_change(conn, &actor, &detail)?;
                Ok::<_, ServiceError>(restored)
            })
        })
        .await?;
    runtime.set(restored);
    Ok(restored)
}

fn event<'a>(
    actor_id: Option<i64>,
    action: &'a str,
    target: &'a str,
    ip: Option<&'a str>,
    outcome: &'a str,
    detail: &'a str,
) -> audit::NewEvent<'a> {
    audit::NewEvent {
        actor_id,
        actor: "proxy",
        action,
        target: Some(target),
        ip,
        outcome,
        detail: Some(detail),
    }
}

/// Signs in the identity the proxy vouched for. Most requests only read; a write happens
/// when an account is created, when group mapping or the email changes, and every few
/// minutes to record the sign-in.
pub async fn sign_in(
    db: &DbPool,
    cfg: &ProxyConfig,
    who: ProxyIdentity,
    ip: Option<String>,
) -> Result<Result<User, ProxyRefusal>, ServiceError> {
    let policy = Policy::parse(&cfg.policy).unwrap_or_default();
    let mapped = role_for_groups(&who.groups, &cfg.admin_groups, &cfg.viewer_groups);
    let subject = who.username.clone();
    let found = db
        .run(move |conn| identities::find(conn, PROXY_PROVIDER, PROXY_ISSUER, &subject))
        .await?;
    if let Some((_, user)) = &found {
        if !user.may_sign_in() {
            return Ok(Err(ProxyRefusal::AccountDisabled));
        }
        let now = db::now_ts();
        let wants_role = mapped.filter(|r| *r != user.role);
        let wants_email = (policy == Policy::Auto)
            .then(|| who.email.as_deref().and_then(|e| Email::parse(e).ok()))
            .flatten()
            .filter(|e| user.email.as_deref() != Some(e.as_str()));
        let stale = user
            .last_login_at
            .is_none_or(|t| now - t > TOUCH_EVERY_SECS);
        if wants_role.is_none() && wants_email.is_none() && !stale {
            return Ok(Ok(user.clone()));
        }
    } else if policy == Policy::Link {
        tracing::warn!(user = %who.username, "proxy sign-in rejected: no linked account for this proxy identity");
        return Ok(Err(ProxyRefusal::NotLinked));
    }
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let ip = ip.as_deref();
            match identities::find(conn, PROXY_PROVIDER, PROXY_ISSUER, &who.username)? {
                Some((link, user)) => {
                    update_existing(conn, link.id, user, &who, policy, mapped, ip)
                }
                None => create(conn, &who, policy, mapped, ip),
            }
        })
    })
    .await
}

fn update_existing(
    conn: &mut db::Conn,
    link_id: i64,
    mut user: User,
    who: &ProxyIdentity,
    policy: Policy,
    mapped: Option<Role>,
    ip: Option<&str>,
) -> Result<Result<User, ProxyRefusal>, ServiceError> {
    if let Some(role) = mapped.filter(|r| *r != user.role) {
        // Group mapping never removes the last active admin.
        let last_admin = user.is_active_admin()
            && role != Role::Admin
            && users::count_other_active_admins(conn, user.id)? == 0;
        if last_admin {
            tracing::warn!(user = %user.username, "proxy group mapping would demote the last active admin; role kept");
        } else {
            users::set_standing(conn, user.id, role, user.status, user.deleted_at, false)?;
            let detail = format!("role {} -> {} (proxy groups)", user.role, role);
            audit::insert(
                conn,
                &event(None, "user.update", &user.username, ip, "success", &detail),
            )?;
            user.role = role;
        }
    }
    if policy == Policy::Auto
        && let Some(email) = who.email.as_deref().and_then(|e| Email::parse(e).ok())
        && user.email.as_deref() != Some(email.as_str())
        && !users::email_in_use(conn, &email.key())?
    {
        let username = Username::parse(&user.username).map_err(|m| {
            ServiceError::Db(db::DbError::Corrupt {
                table: "users",
                detail: m,
            })
        })?;
        users::set_profile(
            conn,
            user.id,
            &username,
            Some(&email),
            user.display_name.as_deref(),
        )?;
        audit::insert(
            conn,
            &event(
                None,
                "user.update",
                &user.username,
                ip,
                "success",
                "email updated from the proxy",
            ),
        )?;
        user.email = Some(email.as_str().to_owned());
    }
    users::record_login(conn, user.id, None)?;
    identities::touch(conn, link_id, who.email.as_deref(), who.name.as_deref())?;
    user.last_login_at = Some(db::now_ts());
    Ok(Ok(user))
}

fn create(
    conn: &mut db::Conn,
    who: &ProxyIdentity,
    policy: Policy,
    mapped: Option<Role>,
    ip: Option<&str>,
) -> Result<Result<User, ProxyRefusal>, ServiceError> {
    let status = match policy {
        Policy::Link => return Ok(Err(ProxyRefusal::NotLinked)),
        Policy::Approve => Status::Pending,
        Policy::Auto => Status::Active,
    };
    let Ok(username) = Username::parse(&who.username) else {
        tracing::warn!(user = %who.username, "proxy sign-in rejected: the header value is not a valid username");
        return Ok(Err(ProxyRefusal::BadUsername));
    };
    let (name_taken, _) = users::taken(conn, None, &username.key(), None)?;
    let name_taken = name_taken || users::name_reserved(conn, &username.key())?;
    if name_taken {
        tracing::warn!(user = %who.username, "proxy sign-in rejected: a local account with this username exists and is not merged; link it explicitly");
        audit::insert(
            conn,
            &event(
                None,
                "login.proxy",
                username.as_str(),
                ip,
                "failure",
                "existing local account, not merged",
            ),
        )?;
        return Ok(Err(ProxyRefusal::ExistingAccount));
    }
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
            display_name: who.name.as_deref(),
            role: mapped.unwrap_or(Role::User),
            status,
            password_hash: None,
            created_by: None,
        },
    )?;
    identities::insert(
        conn,
        &identities::NewIdentity {
            user_id: user.id,
            provider: PROXY_PROVIDER,
            issuer: PROXY_ISSUER,
            subject: &who.username,
            email: who.email.as_deref(),
            display_name: who.name.as_deref(),
        },
    )?;
    users::record_login(conn, user.id, None)?;
    audit::insert(
        conn,
        &event(
            Some(user.id),
            "user.create",
            &user.username,
            ip,
            "success",
            &format!("{policy} policy via forward-auth proxy"),
        ),
    )?;
    Ok(Ok(user))
}
