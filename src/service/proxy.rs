//! Forward-auth sign-in: the identity a trusted reverse proxy vouches for, bound through the
//! identities table (provider `proxy`) — never by a matching username or email.

use crate::domain::audit::AuditAction;
use std::sync::RwLock;

use super::provisioning::{self, AuditNames, Cadence, Naming, Rules, SignInRefusal, Source};
use super::{Refusal, Revertible, ServiceError};
use crate::config::ProxyConfig;
use crate::db::changes::Stamp;
use crate::db::{self, DbPool, settings};
use crate::domain::User;
use crate::domain::proxy::{HeaderNames, Preset, ProxyIdentity, role_for_groups};
use crate::domain::sso::{PROXY_PROVIDER, Policy};

/// The issuer recorded for proxy identities (there is no issuer URL).
pub const PROXY_ISSUER: &str = "proxy";

/// How often a proxied request records "last sign-in" (not on every request).
const TOUCH_EVERY_SECS: i64 = 300;

/// Why a proxy identity was not signed in, as the sign-in page words it for the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyRefusal(pub SignInRefusal);

impl ProxyRefusal {
    pub fn message(self) -> &'static str {
        match self.0 {
            SignInRefusal::NotLinked => {
                "Your proxy identity is not linked to an account here. Ask an administrator to link it."
            }
            SignInRefusal::ExistingAccount => {
                "Your proxy user name belongs to an existing local account, which is never taken over automatically. Ask an administrator to link it."
            }
            SignInRefusal::AccountDisabled => "This account is disabled.",
            SignInRefusal::NoUsername => {
                "The user name your proxy sent cannot be used as a Hallpass username."
            }
        }
    }
}

/// The header preset chosen in the admin UI, kept in memory (read on every proxied request)
/// under the database's change stamp: another process (or the recovery CLI) may change it,
/// so the stored preset is read again whenever anything was committed since, and always
/// when there is no stamp.
#[derive(Debug, Default)]
pub struct ProxyRuntime {
    preset: RwLock<(Option<Stamp>, Option<Preset>)>,
}

impl ProxyRuntime {
    pub fn new(preset: Option<Preset>) -> Self {
        Self {
            // No stamp yet: the first request reads the database.
            preset: RwLock::new((None, preset)),
        }
    }

    /// The preset as last read (for pages that just showed a change made here).
    pub fn preset(&self) -> Option<Preset> {
        self.preset.read().ok().and_then(|p| p.1)
    }

    /// The preset in force now, read from the database unless nothing was committed since
    /// the last read. A failed read keeps the last value known.
    pub async fn current(&self, db: &DbPool) -> Option<Preset> {
        // Taken before the read: a commit during it leaves the value under a stale stamp.
        let stamp = db.change_stamp().await;
        if let Ok(p) = self.preset.read()
            && stamp.is_some()
            && p.0 == stamp
        {
            return p.1;
        }
        match db.run(settings::proxy_preset).await {
            Ok(raw) => {
                let preset = raw.as_deref().and_then(Preset::parse);
                if let Ok(mut p) = self.preset.write() {
                    *p = (stamp, preset);
                }
                preset
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the proxy header preset; using the last one known");
                self.preset()
            }
        }
    }

    /// The header names in force now: the UI's preset, else the configuration's (see
    /// [`ProxyRuntime::current`]).
    pub async fn headers_now(&self, db: &DbPool, cfg: &ProxyConfig) -> HeaderNames {
        names(self.current(db).await, cfg)
    }

    fn set(&self, preset: Option<Preset>) {
        if let Ok(mut p) = self.preset.write() {
            // No stamp: the next request confirms it against the database.
            *p = (None, preset);
        }
    }
}

fn names(preset: Option<Preset>, cfg: &ProxyConfig) -> HeaderNames {
    match preset {
        Some(p) => p.headers(),
        None => cfg.configured_headers(),
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
    super::audit::record(
        conn,
        actor,
        AuditAction::SettingsProxyPreset,
        Some("instance"),
        Some(detail),
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

/// Signs in the identity the proxy vouched for, through the one provisioning path. Most
/// requests only read; a write happens when an account is created, when group mapping or
/// the email changes, and every few minutes to record the sign-in.
pub async fn sign_in(
    db: &DbPool,
    cfg: &ProxyConfig,
    who: ProxyIdentity,
    ip: Option<String>,
) -> Result<Result<User, ProxyRefusal>, ServiceError> {
    let policy = Policy::parse(&cfg.policy).unwrap_or_default();
    let source = Source {
        provider: PROXY_PROVIDER.to_owned(),
        issuer: PROXY_ISSUER.to_owned(),
        subject: who.username.clone(),
        username: Some(who.username),
        email: who.email,
        display_name: who.name,
    };
    let rules = Rules {
        policy,
        // The user name is the subject: taken as sent, never merged into a local account.
        naming: Naming::AsSent,
        role: role_for_groups(&who.groups, &cfg.admin_groups, &cfg.viewer_groups),
        sync_email: policy == Policy::Auto,
        // The first admin is made by the setup wizard or a verified OIDC sign-in, not by
        // whatever a header says.
        first_admin: None,
        cadence: Cadence::PerRequest {
            touch_every_secs: TOUCH_EVERY_SECS,
        },
        audit: AuditNames {
            actor: Some("proxy"),
            login: AuditAction::LoginProxy,
            via: "forward-auth proxy".to_owned(),
        },
        // The groups header fills the groups of the same names (existing ones only).
        groups: Some(who.groups),
    };
    let signed = provisioning::sign_in(db, source, rules, ip).await?;
    Ok(signed.map(|s| s.user).map_err(ProxyRefusal))
}
