//! API keys: create, list, revoke, and check a presented key.
//!
//! A key is `hp_` + 32 random bytes in base64url (no padding): 256 bits, so a fast keyed hash
//! is enough to store it — no password hash, no per-key salt. The database keeps only
//! HMAC-SHA256(server secret, key) in a unique column, and a presented key is found by
//! computing its HMAC and looking that up. There is no secret-dependent comparison in our
//! code to time: the index lookup compares HMACs, which an attacker cannot steer towards a
//! stored value without the server secret, so timing the lookup reveals nothing about a
//! real key. The cleartext key exists only in the response that creates it.

use super::audit::{self, AuditAction};
use super::rate_limit::{Action, Attempt, RateLimiter};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use std::net::IpAddr;

use super::{Actor, Missing, Refusal, ServiceError};
use crate::db::changes::Stamp;
use crate::db::{self, DbPool, api_keys, users};
use crate::domain::{ApiKey, NewApiKey, User};
use crate::secret::ServerSecret;
use crate::service::read_turns::Looked;
use crate::service::stamped::StampedMap;

/// Every key starts with this, so leaks are easy to recognise (and to scan for).
pub const KEY_PREFIX: &str = "hp_";
/// Random bytes in a key.
const KEY_BYTES: usize = 32;
/// Length of a key: the prefix and 43 base64url characters.
const KEY_LEN: usize = 3 + 43;
/// Characters of the key stored in clear to tell keys apart (`hp_` + 6).
const SHOWN_PREFIX_LEN: usize = 9;
/// `last_used_at` is written at most this often per key, in seconds.
const TOUCH_EVERY: i64 = 60;

/// A freshly made key: the stored record, and the key itself to show once.
pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Never prints the key itself.
impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &self.key)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

pub(crate) fn generate() -> String {
    let mut bytes = [0_u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Only strings shaped like our keys are worth a database lookup.
pub fn well_formed(key: &str) -> bool {
    key.len() == KEY_LEN
        && key.starts_with(KEY_PREFIX)
        && key[KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The audit detail naming a key (never its secret).
fn key_detail(key: &ApiKey) -> String {
    format!("id={} name={}", key.id, key.name)
}

/// Creates a key for `owner`; the returned `secret` is the only copy of the key.
pub async fn create(
    db: &DbPool,
    secret: &ServerSecret,
    actor: Actor,
    owner: &User,
    new: NewApiKey,
) -> Result<CreatedKey, ServiceError> {
    if owner.id == crate::env_auth::BREAK_GLASS_ID {
        return Err(Refusal::BreakGlassApiKeys.into());
    }
    let clear = generate();
    let key_hmac = secret.hmac_hex(clear.as_bytes());
    let prefix = clear[..SHOWN_PREFIX_LEN].to_owned();
    let expires_at = new
        .expires_in_days
        .map(|d| db::now_ts().saturating_add(d.saturating_mul(86_400)));
    let (owner_id, owner_name) = (owner.id, owner.username.clone());
    let key = db
        .run(move |conn| {
            db::write_tx(conn, |conn| {
                let key = api_keys::insert(
                    conn,
                    &api_keys::NewRow {
                        user_id: owner_id,
                        name: &new.name,
                        prefix: &prefix,
                        key_hmac: &key_hmac,
                        expires_at,
                    },
                )?;
                audit::record(
                    conn,
                    &actor,
                    AuditAction::ApiKeyCreate,
                    Some(&owner_name),
                    Some(&key_detail(&key)),
                )?;
                Ok::<_, ServiceError>(key)
            })
        })
        .await?;
    Ok(CreatedKey { key, secret: clear })
}

/// The keys of one user, oldest first.
pub async fn list_own(db: &DbPool, user_id: i64) -> Result<Vec<ApiKey>, ServiceError> {
    Ok(db
        .run(move |conn| api_keys::list_for_user(conn, user_id))
        .await?)
}

/// Any user's keys, for admins; `NotFound` when there is no such user.
pub async fn list_for_user(db: &DbPool, user_id: i64) -> Result<Vec<ApiKey>, ServiceError> {
    db.run(move |conn| {
        users::find_by_id(conn, user_id)?.ok_or(ServiceError::from(Missing::Account))?;
        Ok(api_keys::list_for_user(conn, user_id)?)
    })
    .await
}

/// One of the caller's own keys (someone else's is `ApiKeyNotFound`, as is no key at all).
pub async fn find_own(db: &DbPool, owner_id: i64, id: i64) -> Result<ApiKey, ServiceError> {
    db.run(move |conn| {
        api_keys::find(conn, id)?
            .filter(|k| k.user_id == owner_id)
            .ok_or(ServiceError::Refused(Refusal::NotFound(Missing::ApiKey)))
    })
    .await
}

/// Revokes one of `owner`'s keys; someone else's key is `ApiKeyNotFound`.
pub async fn revoke_own(
    db: &DbPool,
    actor: Actor,
    owner: &User,
    id: i64,
) -> Result<ApiKey, ServiceError> {
    revoke(db, actor, Some(owner.id), id).await
}

/// Revokes any key (admins).
pub async fn revoke_any(db: &DbPool, actor: Actor, id: i64) -> Result<ApiKey, ServiceError> {
    revoke(db, actor, None, id).await
}

async fn revoke(
    db: &DbPool,
    actor: Actor,
    owner: Option<i64>,
    id: i64,
) -> Result<ApiKey, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let key = api_keys::find(conn, id)?
                .filter(|k| owner.is_none_or(|o| o == k.user_id))
                .ok_or(ServiceError::Refused(Refusal::NotFound(Missing::ApiKey)))?;
            api_keys::delete(conn, key.id, owner)?;
            let owner_name = users::find_by_id(conn, key.user_id)?
                .map_or_else(|| key.user_id.to_string(), |u| u.username);
            audit::record(
                conn,
                &actor,
                AuditAction::ApiKeyRevoke,
                Some(&owner_name),
                Some(&key_detail(&key)),
            )?;
            Ok(key)
        })
    })
    .await
}

/// The owner of a presented key, or `None` when the key is unknown, revoked or expired, or
/// its owner may not sign in (disabled, deleted). Pending and rejected owners are returned,
/// so the status gate can tell them where they stand.
///
/// The owner of a presented bearer key, counted by the rate limiter per client address (a
/// bad key names no account, and 256 random bits are not guessed): what the identity layer
/// calls. An unusable key is [`Refusal::InvalidApiKey`].
pub async fn sign_in(
    keys: &KeyCache,
    secret: &ServerSecret,
    limiter: &RateLimiter,
    presented: &str,
    ip: IpAddr,
) -> Result<std::sync::Arc<User>, ServiceError> {
    let attempt = Attempt::new(Action::ApiKey, ip, None);
    let check = async {
        keys.authenticate(secret, presented)
            .await?
            .ok_or(ServiceError::Refused(Refusal::InvalidApiKey))
    };
    limiter.guard(attempt, check).await
}

/// The owners of recently presented keys, each valid only while the database's change stamp
/// stays ([`crate::db::changes`]: a revoked key, a disabled owner, any write to keys or
/// users moves it), so scripts calling in a loop cost no database read per request. Keyed
/// by the key's HMAC, not the key: the process keeps no usable key in memory.
#[derive(Debug)]
pub struct KeyCache {
    db: DbPool,
    /// By the key's HMAC.
    entries: StampedMap<String, Known>,
}

#[derive(Debug)]
struct Known {
    owner: std::sync::Arc<User>,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl KeyCache {
    pub fn new(db: &DbPool) -> KeyCache {
        KeyCache {
            db: db.clone(),
            entries: StampedMap::default(),
        }
    }

    /// The owner of a presented key, without the rate limit (see [`sign_in`]).
    /// One indexed query (key joined to owner) on a miss; `last_used_at` is written at most
    /// once a minute (a hit whose last use is older goes to the database to record it).
    /// Shared, not copied: a cache hit hands out the row it holds.
    pub async fn authenticate(
        &self,
        secret: &ServerSecret,
        presented: &str,
    ) -> Result<Option<std::sync::Arc<User>>, ServiceError> {
        if !well_formed(presented) {
            return Ok(None);
        }
        let key_hmac = secret.hmac_hex(presented.as_bytes());
        let now = db::now_ts();
        // Taken before the read: a commit during it leaves the entry filed under a stale stamp.
        let stamp = self.db.change_stamp().await;
        if let Some(stamp) = stamp
            && let Some(owner) = self.cached(&key_hmac, stamp, now)
        {
            return Ok(Some(owner));
        }
        // One read per key and stamp (`service::read_turns`).
        let looked = self
            .entries
            .turn(key_hmac.as_str(), stamp, |s| self.cached(&key_hmac, s, now));
        let _turn = match looked.await {
            Looked::Hit(owner) => return Ok(Some(owner)),
            Looked::Miss(turn) => turn,
        };
        let (owner, known) = self
            .db
            .run({
                let key_hmac = key_hmac.clone();
                move |conn| look_up(conn, &key_hmac, now)
            })
            .await?;
        if let (Some(stamp), Some(known)) = (stamp, known) {
            self.entries.put(key_hmac, stamp, known);
        }
        Ok(owner)
    }

    fn cached(&self, key_hmac: &str, stamp: Stamp, now: i64) -> Option<std::sync::Arc<User>> {
        self.entries.get(key_hmac, stamp, |k| {
            let fresh = k.expires_at.is_none_or(|t| t > now)
                && k.last_used_at.is_some_and(|t| t > now - TOUCH_EVERY);
            fresh.then(|| k.owner.clone())
        })
    }
}

/// The key's owner if it may be used now, recording the use; and what to cache of it.
fn look_up(
    conn: &mut db::Conn,
    key_hmac: &str,
    now: i64,
) -> Result<(Option<std::sync::Arc<User>>, Option<Known>), ServiceError> {
    let Some((key, user)) = api_keys::find_by_hmac(conn, key_hmac)? else {
        return Ok((None, None));
    };
    if key.is_expired(now) || !user.may_sign_in() {
        return Ok((None, None));
    }
    let mut last_used_at = key.last_used_at;
    if key.last_used_at.is_none_or(|t| t <= now - TOUCH_EVERY) {
        api_keys::touch(conn, key.id, now, TOUCH_EVERY)?;
        last_used_at = Some(now);
    }
    let owner = std::sync::Arc::new(user);
    let known = Known {
        owner: owner.clone(),
        expires_at: key.expires_at,
        last_used_at,
    };
    Ok((Some(owner), Some(known)))
}

#[cfg(test)]
mod tests {
    use super::{KEY_LEN, generate, well_formed};

    #[test]
    fn keys_have_the_documented_shape() {
        let k = generate();
        assert_eq!(k.len(), KEY_LEN);
        assert!(well_formed(&k), "{k}");
        assert_ne!(generate(), k);
        assert!(!well_formed("hp_short"));
        assert!(!well_formed(&k.replace("hp_", "xx_")));
        assert!(!well_formed(&format!("{}!", &k[..KEY_LEN - 1])));
    }
}
