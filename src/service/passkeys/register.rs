//! Adding a passkey to a signed-in account, and the account's list: renaming, removing (never
//! the last way in). A registration is verified ([`verify`]) and then stored
//! ([`store_in`]) inside a write: the account page's own, or — for the passkey an invite
//! sign-up creates the account with — the write that creates the account.

use webauthn_rs::prelude::{Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Uuid};

use super::{Ceremony, Purpose, credential_key, options, parse_answer, relying_party};
use crate::config::Config;
use crate::db::{self, Conn, DbPool, identities, passkeys, users};
use crate::domain::audit::AuditAction;
use crate::domain::passkey::{PasskeyName, WaysIn, check_removal};
use crate::domain::refusal::Missing;
use crate::domain::{User, Username};
use crate::service::{Actor, Refusal, ServiceError};

/// A passkey as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyView {
    pub id: i64,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None`: never used to sign in.
    pub last_used_at: Option<i64>,
}

/// The account's passkeys, oldest first.
pub async fn list(db: &DbPool, user_id: i64) -> Result<Vec<PasskeyView>, ServiceError> {
    let rows = db
        .run(move |conn| passkeys::for_user(conn, user_id))
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PasskeyView {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        })
        .collect())
}

/// Starts adding a passkey to `user`: the options for `navigator.credentials.create()` and the
/// ceremony to keep. The authenticator is asked for a discoverable credential (so it can sign
/// in without a username) with user verification, and not to make a second passkey on an
/// authenticator that holds one of this account already.
pub async fn start_registration(
    db: &DbPool,
    config: &Config,
    user: &User,
) -> Result<(serde_json::Value, Ceremony), ServiceError> {
    if user.id == crate::env_auth::BREAK_GLASS_ID {
        return Err(Refusal::BreakGlassSecondFactor.into());
    }
    let rp = relying_party(config)?;
    let uid = user.id;
    let rows = db.run(move |conn| passkeys::for_user(conn, uid)).await?;
    // One random handle per account, the same for all its passkeys: the authenticator keeps
    // it, so it must not be the numeric id (or anything else about the account).
    let handle = match rows.first() {
        Some(r) => Uuid::parse_str(&r.user_handle)
            .map_err(|_| ServiceError::Internal("a stored passkey user handle is not a UUID"))?,
        None => Uuid::from_bytes(rand::random()),
    };
    let exclude = rows
        .iter()
        .filter_map(|r| serde_json::from_str::<Passkey>(&r.passkey).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let display = user
        .display_name
        .as_deref()
        .filter(|d| !d.is_empty())
        .unwrap_or(&user.username);
    let (opts, reg) = creation(&rp, handle, &user.username, display, exclude)?;
    let ceremony = Ceremony::new(Purpose::Register, Some(uid), Some(handle.to_string()), &reg)?;
    Ok((opts, ceremony))
}

/// Starts the passkey of an account that does not exist yet (an invite sign-up), bound to
/// `subject` (the invite and the username asked for: see [`verify_sign_up`]). A fresh random
/// user handle; nothing to exclude, as no passkey can belong to the account yet.
pub fn start_sign_up(
    config: &Config,
    username: &Username,
    subject: String,
) -> Result<(serde_json::Value, Ceremony), ServiceError> {
    let rp = relying_party(config)?;
    let handle = Uuid::from_bytes(rand::random());
    let name = username.to_string();
    let (opts, reg) = creation(&rp, handle, &name, &name, Vec::new())?;
    let mut ceremony = Ceremony::new(Purpose::SignUp, None, Some(handle.to_string()), &reg)?;
    ceremony.subject = Some(subject);
    Ok((opts, ceremony))
}

/// The browser's options and the crate's state of a registration.
fn creation(
    rp: &webauthn_rs::prelude::Webauthn,
    handle: Uuid,
    username: &str,
    display: &str,
    exclude: Vec<webauthn_rs::prelude::CredentialID>,
) -> Result<(serde_json::Value, PasskeyRegistration), ServiceError> {
    let (ccr, reg) = rp
        .start_passkey_registration(handle, username, display, Some(exclude))
        .map_err(|_| ServiceError::Internal("could not start a passkey registration"))?;
    let mut opts = options(&ccr)?;
    // The crate leaves the resident key "discouraged" (it works for security keys without
    // storage); Hallpass's passkeys must sign in without a username, so they must be
    // discoverable. Only the request changes: the answer is verified the same way.
    if let Some(sel) = opts
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    Ok((opts, reg))
}

/// A passkey the browser's answer proved, not stored yet: [`store_in`] stores it inside the
/// caller's write.
pub struct VerifiedPasskey {
    name: PasskeyName,
    handle: String,
    credential_id: String,
    /// The crate's passkey, as stored.
    passkey: String,
}

/// Checks the answer against the ceremony (its purpose, account and subject) and the relying
/// party. The name is checked first.
fn verify(
    config: &Config,
    ceremony: Option<Ceremony>,
    (purpose, user_id, subject): (Purpose, Option<i64>, Option<&str>),
    name: &str,
    answer: &str,
) -> Result<VerifiedPasskey, ServiceError> {
    let name = PasskeyName::parse(name).map_err(ServiceError::Validation)?;
    let rp = relying_party(config)?;
    let Some(ceremony) = ceremony else {
        return Err(Refusal::InvalidPasskey.into());
    };
    let handle = ceremony.handle.clone().ok_or(Refusal::InvalidPasskey)?;
    let state: PasskeyRegistration = ceremony.open_own(purpose, user_id, subject)?;
    let answer: RegisterPublicKeyCredential = parse_answer(answer)?;
    let passkey = rp
        .finish_passkey_registration(&answer, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            ServiceError::from(Refusal::InvalidPasskey)
        })?;
    Ok(VerifiedPasskey {
        name,
        handle,
        credential_id: credential_key(passkey.cred_id().as_ref()),
        passkey: serde_json::to_string(&passkey)
            .map_err(|_| ServiceError::Internal("could not store the passkey"))?,
    })
}

/// Verifies the passkey of an invite sign-up: refused unless its ceremony was started for
/// exactly `subject` (the same invite and username).
pub fn verify_sign_up(
    config: &Config,
    ceremony: Option<Ceremony>,
    subject: &str,
    name: &str,
    answer: &str,
) -> Result<VerifiedPasskey, ServiceError> {
    let own = (Purpose::SignUp, None, Some(subject));
    verify(config, ceremony, own, name, answer)
}

/// Finishes adding a passkey named `name` from the browser's answer (audited as
/// `passkey.add`). The name is checked before anything else.
pub async fn finish_registration(
    db: &DbPool,
    config: &Config,
    actor: Actor,
    user: &User,
    ceremony: Option<Ceremony>,
    name: &str,
    answer: &str,
) -> Result<PasskeyView, ServiceError> {
    let own = (Purpose::Register, Some(user.id), None);
    let verified = verify(config, ceremony, own, name, answer)?;
    let (uid, username) = (user.id, user.username.clone());
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            store_in(conn, &actor, uid, &username, &verified)
        })
    })
    .await
}

/// Stores a verified passkey for `user_id` inside the caller's write (audited as
/// `passkey.add`): the account page's own write, or the one that creates the account.
pub fn store_in(
    conn: &mut Conn,
    actor: &Actor,
    user_id: i64,
    username: &str,
    v: &VerifiedPasskey,
) -> Result<PasskeyView, ServiceError> {
    let new = passkeys::NewPasskey {
        user_id,
        name: v.name.as_str(),
        credential_id: &v.credential_id,
        user_handle: &v.handle,
        passkey: &v.passkey,
    };
    match passkeys::insert(conn, &new) {
        // The same authenticator credential registered already (the browser ignored the
        // exclusion list, or an answer sent twice): nothing new to add.
        Err(e) if e.is_unique_violation() => {
            return Err(ServiceError::from(Refusal::InvalidPasskey));
        }
        other => other?,
    }
    let name = Some(v.name.as_str());
    crate::service::audit::record(conn, actor, AuditAction::PasskeyAdd, Some(username), name)?;
    let row = passkeys::by_credential(conn, &v.credential_id)?
        .ok_or(ServiceError::Internal("the passkey just stored is gone"))?;
    Ok(PasskeyView {
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    })
}

/// Renames one of `user_id`'s passkeys (audited as `passkey.rename`).
pub async fn rename(
    db: &DbPool,
    actor: Actor,
    user_id: i64,
    id: i64,
    name: &str,
) -> Result<(), ServiceError> {
    let name = PasskeyName::parse(name).map_err(ServiceError::Validation)?;
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            if !passkeys::rename(conn, user_id, id, name.as_str())? {
                return Err(ServiceError::from(Missing::Passkey));
            }
            let user = users::find_by_id(conn, user_id)?.ok_or(Missing::Account)?;
            crate::service::audit::record(
                conn,
                &actor,
                AuditAction::PasskeyRename,
                Some(&user.username),
                Some(name.as_str()),
            )?;
            Ok(())
        })
    })
    .await
}

/// Removes one of `user_id`'s passkeys (audited as `passkey.remove`), unless it is the
/// account's last way to sign in: checked inside the write, under the instance lock, so two
/// removals at once cannot both pass.
pub async fn remove(db: &DbPool, actor: Actor, user_id: i64, id: i64) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let user = users::find_by_id(conn, user_id)?.ok_or(Missing::Account)?;
            let mine = passkeys::for_user(conn, user_id)?;
            let Some(gone) = mine.iter().find(|p| p.id == id) else {
                return Err(ServiceError::from(Missing::Passkey));
            };
            check_removal(WaysIn {
                has_password: user.password_hash.is_some(),
                linked_identities: identities::for_user(conn, user_id)?.len(),
                other_passkeys: mine.len() - 1,
            })
            .map_err(Refusal::LastSignInMethod)?;
            passkeys::delete(conn, user_id, id)?;
            crate::service::audit::record(
                conn,
                &actor,
                AuditAction::PasskeyRemove,
                Some(&user.username),
                Some(&gone.name),
            )?;
            Ok(())
        })
    })
    .await
}
