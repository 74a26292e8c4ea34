//! OpenID providers: the environment's (read-only) and the admin UI's (stored, with one
//! step of undo), and the instance's sign-in switches.

use crate::domain::audit::AuditAction;
use secrecy::{ExposeSecret, SecretString};

use super::{SignInModes, open, open_with, seal, sealing_key};
use crate::db::oidc_providers::{self as store, StoredProvider};
use crate::db::{self, DbPool, audit, identities, settings};
use crate::domain::FieldErrors;
use crate::domain::sso::{Policy, Provider, ProviderInput, SecretChange, Source};
use crate::secret::ServerSecret;
use crate::service::{Actor, Missing, Refusal, Revertible, ServiceError};
use crate::sso_env::SsoEnv;

fn from_stored(s: &StoredProvider, secret: &ServerSecret) -> Option<Provider> {
    let client_secret = match &s.client_secret {
        Some(sealed) => match open(secret, sealed) {
            Some(plain) => Some(SecretString::from(plain)),
            None => {
                tracing::error!(provider = %s.id, "cannot decrypt the client secret of this OpenID provider (was the server secret changed?); the provider is unusable until its secret is entered again");
                return None;
            }
        },
        None => None,
    };
    Some(Provider {
        id: s.id.clone(),
        label: s.label.clone(),
        issuer: s.issuer.clone(),
        client_id: s.client_id.clone(),
        client_secret,
        scopes: s.scopes.split(' ').map(str::to_owned).collect(),
        subject_claim: s.subject_claim.clone(),
        username_claim: s.username_claim.clone(),
        email_claim: s.email_claim.clone(),
        groups_claim: s.groups_claim.clone(),
        policy: Policy::parse(&s.policy).unwrap_or_default(),
        enabled: s.enabled,
        source: Source::Ui,
    })
}

/// Every provider: the environment's first, then the admin UI's.
pub async fn all(
    db: &DbPool,
    secret: &ServerSecret,
    env: &SsoEnv,
) -> Result<Vec<Provider>, ServiceError> {
    let stored = db.run(store::list).await?;
    let mut out = env.providers.clone();
    out.extend(
        stored
            .iter()
            .filter(|s| !env.providers.iter().any(|p| p.id == s.id))
            .filter_map(|s| from_stored(s, secret)),
    );
    Ok(out)
}

/// One provider by id, whether or not it is enabled.
pub async fn find(
    db: &DbPool,
    secret: &ServerSecret,
    env: &SsoEnv,
    id: &str,
) -> Result<Option<Provider>, ServiceError> {
    if let Some(p) = env.providers.iter().find(|p| p.id == id) {
        return Ok(Some(p.clone()));
    }
    let id = id.to_owned();
    let stored = db.run(move |conn| store::get(conn, &id)).await?;
    Ok(stored.and_then(|s| from_stored(&s, secret)))
}

/// Provider `id` if people may sign in with it now: single sign-on is on and the provider
/// is enabled.
pub async fn usable(
    db: &DbPool,
    secret: &ServerSecret,
    env: &SsoEnv,
    id: &str,
) -> Result<Option<Provider>, ServiceError> {
    if !modes(db, env).await?.sso {
        return Ok(None);
    }
    Ok(find(db, secret, env, id).await?.filter(|p| p.enabled))
}

/// A stored provider for the wizard: whether a secret is set and whether there is a
/// snapshot to revert to.
#[derive(Debug, Clone)]
pub struct StoredState {
    pub has_secret: bool,
    pub has_previous: bool,
}

pub async fn stored_state(db: &DbPool, id: &str) -> Result<Option<StoredState>, ServiceError> {
    let id = id.to_owned();
    let s = db.run(move |conn| store::get(conn, &id)).await?;
    Ok(s.map(|s| StoredState {
        has_secret: s.client_secret.is_some(),
        has_previous: s.previous.is_some(),
    }))
}

/// The current sign-in switches.
/// The sign-in switches in force. With no provider whose button could be shown, SSO is
/// off and the password form is on whatever the stored switches say: nobody is locked out
/// by hiding or removing the last provider.
pub async fn modes(db: &DbPool, env: &SsoEnv) -> Result<SignInModes, ServiceError> {
    Ok(modes_and_settings(db, env).await?.0)
}

/// [`modes`] and the settings row they come from, read once.
pub async fn modes_and_settings(
    db: &DbPool,
    env: &SsoEnv,
) -> Result<(SignInModes, crate::db::settings::Settings), ServiceError> {
    let (s, enabled) = db
        .run(|conn| Ok::<_, ServiceError>((settings::get(conn)?, store::count_enabled(conn)?)))
        .await?;
    let mut modes = SignInModes::of(&s, env);
    if env.providers.is_empty() && enabled == 0 {
        modes.sso = false;
        modes.local = true;
    }
    Ok((modes, s))
}

/// Whether two stored versions have the same connection settings. Secrets are compared in
/// plain text: sealing the same secret twice gives different ciphertexts.
fn same_settings(a: &StoredProvider, b: &StoredProvider, key: &[u8; 32]) -> bool {
    let plain = |s: &StoredProvider| s.client_secret.as_deref().map(|c| open_with(key, c));
    a.label == b.label
        && a.issuer == b.issuer
        && a.client_id == b.client_id
        && a.scopes == b.scopes
        && a.subject_claim == b.subject_claim
        && a.username_claim == b.username_claim
        && a.email_claim == b.email_claim
        && a.groups_claim == b.groups_claim
        && a.policy == b.policy
        && plain(a) == plain(b)
}

/// Creates or updates a provider defined in the admin UI. An update that changes something
/// keeps the previous connection settings as the snapshot "Revert to previous" restores; a
/// save that changes nothing writes nothing, so the snapshot stays the last real change.
pub async fn save(
    db: &DbPool,
    secret: &ServerSecret,
    env: &SsoEnv,
    actor: Actor,
    input: ProviderInput,
    is_new: bool,
) -> Result<(), ServiceError> {
    if env.providers.iter().any(|p| p.id == input.id) {
        return Err(Refusal::ProviderReadOnly(Some(input.id.clone())).into());
    }
    let sealed_new = match &input.client_secret {
        SecretChange::Set(s) => Some(seal(secret, s.expose_secret()).ok_or(
            ServiceError::Internal("could not encrypt the client secret"),
        )?),
        _ => None,
    };
    let key = sealing_key(secret);
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let existing = store::get(conn, &input.id)?;
            let client_secret = match (&input.client_secret, &existing) {
                (SecretChange::Set(_), _) => sealed_new,
                (SecretChange::Remove, _) => None,
                (SecretChange::Keep, Some(e)) => e.client_secret.clone(),
                (SecretChange::Keep, None) => None,
            };
            let mut row = StoredProvider {
                id: input.id.clone(),
                label: input.label.clone(),
                issuer: input.issuer.clone(),
                client_id: input.client_id.clone(),
                client_secret,
                scopes: input.scopes.join(" "),
                subject_claim: input.subject_claim.clone(),
                username_claim: input.username_claim.clone(),
                email_claim: input.email_claim.clone(),
                groups_claim: input.groups_claim.clone(),
                policy: input.policy.as_str().to_owned(),
                enabled: true,
                previous: None,
            };
            let action = match existing {
                Some(_) if is_new => return Err(Refusal::ProviderIdTaken(row.id).into()),
                // An update names a provider that exists: it must not create one (which would
                // skip the secret a new provider needs).
                None if !is_new => return Err(Missing::Provider.into()),
                Some(old) if same_settings(&old, &row, &key) => return Ok(()),
                Some(old) => {
                    row.enabled = old.enabled;
                    row.previous = serde_json::to_string(&old).ok();
                    store::update(conn, &row)?;
                    if row.groups_claim.is_none() {
                        // Nothing would refresh what the claim gave: it ends now.
                        crate::service::groups::drop_claimed(conn, &row.id)?;
                    }
                    AuditAction::SsoProviderUpdate
                }
                None => {
                    store::insert(conn, &row)?;
                    AuditAction::SsoProviderCreate
                }
            };
            let detail = format!(
                "issuer={} client_id={} policy={} secret={}",
                row.issuer,
                row.client_id,
                row.policy,
                match &input.client_secret {
                    SecretChange::Set(_) => "changed",
                    SecretChange::Remove => "none (public client)",
                    SecretChange::Keep => "unchanged",
                }
            );
            crate::service::audit::record(conn, &actor, action, Some(&row.id), Some(&detail))?;
            Ok(())
        })
    })
    .await
}

/// Restores the snapshot taken by the last save, turns SSO login off (the restored settings
/// have not been proven to work), and clears the snapshot: one step of undo.
pub async fn revert(db: &DbPool, actor: Actor, id: &str) -> Result<(), ServiceError> {
    let id = id.to_owned();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let current = store::get(conn, &id)?.ok_or(ServiceError::from(Missing::Provider))?;
            let previous: StoredProvider = current
                .previous
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok())
                .ok_or_else(|| {
                    ServiceError::from(Refusal::NothingToRevert(Revertible::Provider))
                })?;
            let restored = StoredProvider {
                enabled: current.enabled,
                previous: None,
                id: current.id.clone(),
                ..previous
            };
            store::update(conn, &restored)?;
            if restored.groups_claim.is_none() {
                crate::service::groups::drop_claimed(conn, &id)?;
            }
            let s = settings::get(conn)?;
            settings::set_sign_in(conn, s.local_login_enabled, false)?;
            let detail = format!(
                "restored issuer={} client_id={}; SSO login turned off",
                restored.issuer, restored.client_id
            );
            let action = AuditAction::SsoProviderRevert;
            crate::service::audit::record(conn, &actor, action, Some(&id), Some(&detail))?;
            Ok(())
        })
    })
    .await
}

/// Removes a provider defined in the admin UI and every identity linked through it, unless
/// that would leave someone without a way in.
pub async fn delete(
    db: &DbPool,
    env: &SsoEnv,
    actor: Actor,
    id: &str,
) -> Result<usize, ServiceError> {
    if env.providers.iter().any(|p| p.id == id) {
        return Err(Refusal::ProviderReadOnly(None).into());
    }
    let id = id.to_owned();
    let env = env.clone();
    let caller = actor.clone();
    let (removed, kept) = db.run(move |conn| {
        db::write_tx(conn, |conn| {
            store::get(conn, &id)?.ok_or(ServiceError::from(Missing::Provider))?;
            let links = identities::for_provider(conn, &id)?;
            let s = settings::get(conn)?;
            let local = SignInModes::of(&s, &env).local;
            for (link, username) in &links {
                let others = identities::for_user(conn, link.user_id)?
                    .into_iter()
                    .filter(|i| i.provider != id)
                    .count();
                let user = crate::db::users::find_by_id(conn, link.user_id)?;
                let has_password = user.as_ref().is_some_and(|u| u.password_hash.is_some());
                // A passkey signs in on its own (whatever the password setting).
                let passkeys = crate::db::passkeys::for_user(conn, link.user_id)?.len();
                if others == 0 && passkeys == 0 && !(has_password && local) {
                    return Err(Refusal::LastSignInMethod(format!(
                            "\"{username}\" signs in only through this provider: give them a password or another identity first."
                        )).into());
                }
            }
            // The linked accounts' sessions end (one may have come through this provider);
            // the deleting admin's own session stays, as when unlinking oneself.
            let mut kept = None;
            for (link, _) in &links {
                identities::delete(conn, link.id)?;
                let version = crate::db::users::bump_session_version(conn, link.user_id)?;
                if actor.user_id == Some(link.user_id) {
                    kept = Some((link.user_id, version));
                }
            }
            store::delete(conn, &id)?;
            let memberships = crate::service::groups::drop_claimed(conn, &id)?;
            let detail = format!(
                "{} linked identities removed, {memberships} group memberships from its groups claim",
                links.len()
            );
            let action = AuditAction::SsoProviderDelete;
            crate::service::audit::record(conn, &actor, action, Some(&id), Some(&detail))?;
            Ok::<_, ServiceError>((links.len(), kept))
        })
    })
    .await?;
    if let Some((user_id, version)) = kept {
        caller.keep_own_session(user_id, version).await?;
    }
    Ok(removed)
}

/// Turns one UI provider's button on or off (an environment provider's is set there).
pub async fn set_enabled(
    db: &DbPool,
    env: &SsoEnv,
    actor: Actor,
    id: &str,
    enabled: bool,
) -> Result<(), ServiceError> {
    if env.providers.iter().any(|p| p.id == id) {
        return Err(Refusal::ProviderReadOnly(None).into());
    }
    let id = id.to_owned();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let mut row = store::get(conn, &id)?.ok_or(ServiceError::from(Missing::Provider))?;
            row.enabled = enabled;
            store::update(conn, &row)?;
            crate::service::audit::record(
                conn,
                &actor,
                if enabled {
                    AuditAction::SsoProviderEnable
                } else {
                    AuditAction::SsoProviderDisable
                },
                Some(&id),
                None,
            )?;
            Ok(())
        })
    })
    .await
}

/// Sets "Enable SSO login" and "Local login". Password sign-in may only be turned off while
/// SSO login is on and at least one active admin has a working link to an enabled provider.
pub async fn set_sign_in_modes(
    db: &DbPool,
    secret: &ServerSecret,
    env: &SsoEnv,
    actor: Actor,
    sso_enabled: bool,
    local_login_enabled: bool,
) -> Result<(), ServiceError> {
    let providers = all(db, secret, env).await?;
    let env_has_providers = !env.providers.is_empty();
    let usable: Vec<(String, String)> = providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| (p.id.clone(), p.issuer.clone()))
        .collect();
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if !local_login_enabled {
                if !sso_enabled {
                    return Err(ServiceError::Validation(FieldErrors::single(
                        "local_login_enabled",
                        "Password sign-in cannot be turned off while SSO login is off: nobody could sign in.",
                    )));
                }
                let admin_can_sso = identities::of_active_admins(conn)?.iter().any(|i| {
                    usable
                        .iter()
                        .any(|(id, issuer)| *id == i.provider && *issuer == i.issuer)
                });
                if !admin_can_sso {
                    return Err(ServiceError::Validation(FieldErrors::single(
                        "local_login_enabled",
                        "Password sign-in stays on until at least one active admin has linked an identity of an enabled provider (use Verify & Link first).",
                    )));
                }
            }
            let before = settings::get(conn)?;
            settings::set_sign_in(conn, local_login_enabled, sso_enabled)?;
            let onoff = |b: bool| if b { "on" } else { "off" };
            audit::insert(
                conn,
                &audit::NewEvent {
                    actor_id: actor.user_id,
                    actor: &actor.name,
                    action: AuditAction::SettingsSignIn,
                    target: Some("instance"),
                    ip: actor.ip.as_deref(),
                    outcome: "success",
                    detail: Some(&format!(
                        "sso_login {} -> {}, local_login {} -> {}",
                        onoff(before.sso_enabled.unwrap_or(env_has_providers)),
                        onoff(sso_enabled),
                        onoff(before.local_login_enabled),
                        onoff(local_login_enabled)
                    )),
                },
            )?;
            Ok(())
        })
    })
    .await
}
