//! What the recovery CLI (`hallpass recover …`) reads and changes beyond what
//! `service::admin` already does for accounts. It works on the database a running server may
//! be using, so every change takes the same instance write lock as the web's
//! (`db::write_tx`) and is recorded in the audit log with the actor [`ACTOR`].

use super::Missing;
use super::sso::SignInModes;
use super::{Actor, ServiceError};
use crate::db::{self, DbPool, audit, identities, oidc_providers, sessions, settings, users};
use crate::domain::audit::AuditAction;
use crate::domain::sso::{LinkedIdentity, PROXY_PROVIDER, Source};
use crate::domain::{User, Username};
use crate::sso_env::SsoEnv;

pub use crate::db::settings::Settings;

/// The audit log's name for whoever ran the recovery CLI (it has no account of its own).
pub const ACTOR: &str = "cli";

/// The actor of every change the recovery CLI makes.
pub fn actor() -> Actor {
    Actor::system(ACTOR)
}

/// A provider as `recover status` shows it: never its secret, only whether it has one.
#[derive(Debug, Clone)]
pub struct ProviderSummary {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub policy: String,
    pub source: Source,
    pub enabled: bool,
    pub has_secret: bool,
    /// A stored provider whose id the environment also defines: the environment's wins.
    pub shadowed: bool,
}

/// An account and the identities linked to it.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: User,
    pub identities: Vec<LinkedIdentity>,
}

/// Everything `recover status` prints.
#[derive(Debug, Clone)]
pub struct Overview {
    pub settings: Settings,
    /// The switches in effect, after `HALLPASS_SSO_DISABLE_OVERRIDE`.
    pub modes: SignInModes,
    /// The environment's providers first, then the stored ones.
    pub providers: Vec<ProviderSummary>,
    /// Every account, deleted ones too, by username.
    pub accounts: Vec<Account>,
}

/// Reads the settings, the providers and every account with its links.
pub async fn overview(db: &DbPool, env: &SsoEnv) -> Result<Overview, ServiceError> {
    let (settings, stored, users, links) = db
        .run(|conn| {
            Ok::<_, ServiceError>((
                settings::get(conn)?,
                oidc_providers::list(conn)?,
                users::all(conn)?,
                identities::all(conn)?,
            ))
        })
        .await?;
    let mut providers: Vec<ProviderSummary> = env
        .providers
        .iter()
        .map(|p| ProviderSummary {
            id: p.id.clone(),
            label: p.label.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            policy: p.policy.as_str().to_owned(),
            source: Source::Env,
            enabled: p.enabled,
            has_secret: p.client_secret.is_some(),
            shadowed: false,
        })
        .collect();
    providers.extend(stored.into_iter().map(|s| ProviderSummary {
        shadowed: env.providers.iter().any(|p| p.id == s.id),
        id: s.id,
        label: s.label,
        issuer: s.issuer,
        client_id: s.client_id,
        policy: s.policy,
        source: Source::Ui,
        enabled: s.enabled,
        has_secret: s.client_secret.is_some(),
    }));
    let accounts = users
        .into_iter()
        .map(|user| Account {
            identities: links
                .iter()
                .filter(|l| l.user_id == user.id)
                .cloned()
                .collect(),
            user,
        })
        .collect();
    Ok(Overview {
        // The same rules as the sign-in page (no enabled provider: passwords stay on).
        modes: super::sso::providers::modes(db, env).await?,
        settings,
        providers,
        accounts,
    })
}

/// The account named `username` (case-insensitively), deleted or not. A name that is not a
/// valid username cannot belong to anyone: [`ServiceError::from(Missing::Account)`].
pub async fn find_user(db: &DbPool, username: &str) -> Result<User, ServiceError> {
    let Ok(name) = Username::parse(username) else {
        return Err(ServiceError::from(Missing::Account));
    };
    // Usernames cannot contain `@`, so this key never matches an email.
    let key = name.key();
    db.run(move |conn| users::find_by_login(conn, &key))
        .await?
        .ok_or(ServiceError::from(Missing::Account))
}

/// What `wipe-sso` removed.
#[derive(Debug, Clone)]
pub struct Wiped {
    pub providers: usize,
    pub identities: usize,
    /// Accounts whose sessions were ended (all of them).
    pub accounts: usize,
    /// Accounts allowed to sign in that now have neither a password, a passkey nor a
    /// forward-auth link: they need `reset-password` to get in again.
    pub without_password: Vec<String>,
}

/// Removes the stored SSO configuration in one locked transaction: every provider defined in
/// the admin UI, every identity linked through an OpenID provider; SSO login off and password
/// sign-in on (so nobody with a password is locked out); every account's sessions ended
/// (`session_version` bumped). Providers from the environment are not stored and stay
/// defined; forward-auth (`proxy`) links stay too.
pub async fn wipe_sso(db: &DbPool, actor: Actor) -> Result<Wiped, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            // The memberships their groups claims made go with them: nothing would
            // refresh them any more.
            let mut memberships = 0;
            for p in oidc_providers::list(conn)? {
                memberships += crate::service::groups::drop_claimed(conn, &p.id)?;
            }
            let providers = oidc_providers::delete_all(conn)?;
            // Forward-auth links (`proxy`) are not single sign-on: configured in
            // `auth.proxy`, they stay.
            let identities = identities::delete_all_but(conn, PROXY_PROVIDER)?;
            let before = settings::get(conn)?;
            settings::set_sign_in(conn, true, false)?;
            let accounts = users::bump_all_session_versions(conn)?;
            sessions::delete_all(conn)?;
            let proxied: Vec<i64> = identities::all(conn)?
                .into_iter()
                .map(|i| i.user_id)
                .collect();
            // A passkey signs in on its own: such an account still has a way in.
            let mut without_password = Vec::new();
            for u in users::all(conn)? {
                let stranded = u.may_sign_in()
                    && u.password_hash.is_none()
                    && !proxied.contains(&u.id)
                    && crate::db::passkeys::count(conn, u.id)? == 0;
                if stranded {
                    without_password.push(u.username);
                }
            }
            let onoff = |b: bool| if b { "on" } else { "off" };
            let detail = format!(
                "{providers} stored providers and {identities} SSO identities removed; \
                 sso_login {} -> off, local_login {} -> on; sessions of {accounts} accounts ended; \
                 {memberships} group memberships from their groups claims removed",
                before.sso_enabled.map_or("unset", onoff),
                onoff(before.local_login_enabled),
            );
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SsoWipe,
                    target: Some("instance"),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: Some(&detail),
                },
            )?;
            Ok(Wiped {
                providers,
                identities,
                accounts,
                without_password,
            })
        })
    })
    .await
}

/// Turns password (local) sign-in on, leaving the SSO switch as it is. Returns whether it was
/// off before. Nobody's sessions end: nothing about any account changed.
pub async fn enable_local(db: &DbPool, actor: Actor) -> Result<bool, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let was_on = settings::get(conn)?.local_login_enabled;
            settings::set_local_login(conn, true)?;
            let detail = if was_on {
                "local_login on (no change)"
            } else {
                "local_login off -> on"
            };
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SettingsSignIn,
                    target: Some("instance"),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: Some(detail),
                },
            )?;
            Ok(!was_on)
        })
    })
    .await
}
