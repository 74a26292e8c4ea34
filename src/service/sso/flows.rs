//! Started single sign-on round trips, kept in the database until their callback.
//!
//! A flow is stored under the SHA-256 of its `state` and of a *binding* that names the
//! browser (the nonce cookie of its signed CSRF token), so only the browser that started it
//! can finish it. The callback takes
//! it with one DELETE: when the same callback arrives several times at once (a double click,
//! a retrying proxy, an attacker racing the victim), exactly one request gets the flow and
//! exchanges the code; the others are refused before the provider is contacted.

use sha2::{Digest, Sha256};

use super::oidc::{PendingFlow, Purpose};
use crate::db::oidc_flows::{self as store, FlowRow};
use crate::db::{self, DbPool};
use crate::service::ServiceError;

/// How long a started sign-in may take before its `state` is no longer accepted.
pub const FLOW_LIFETIME_SECS: i64 = 600;

/// Sign-ins started in other tabs of the same browser stay valid; older ones are dropped.
pub const MAX_FLOWS_PER_SESSION: usize = 5;

/// Why a callback's flow was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Unknown state, already used, or started in another browser.
    Unknown,
    /// Found, but older than [`FLOW_LIFETIME_SECS`] (it is gone now too).
    Expired,
}

fn sha256_hex(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(value.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

/// Stores a started flow for the browser named by `binding`.
pub async fn remember(
    db: &DbPool,
    binding: &str,
    state: &str,
    flow: PendingFlow,
) -> Result<(), ServiceError> {
    let (purpose, link_user_id) = match flow.purpose {
        Purpose::Login => ("login", None),
        Purpose::Link { user_id } => ("link", Some(user_id)),
    };
    let row = FlowRow {
        state_hash: sha256_hex(state),
        binding: sha256_hex(binding),
        provider: flow.provider,
        fingerprint: flow.fingerprint,
        nonce: flow.nonce,
        pkce_verifier: flow.pkce_verifier,
        purpose: purpose.to_owned(),
        link_user_id,
        next: flow.next,
        redirect_uri: flow.redirect_uri,
        created_at: flow.started_at,
        expires_at: flow.started_at.saturating_add(FLOW_LIFETIME_SECS),
    };
    db.run(move |conn| store::insert(conn, &row, MAX_FLOWS_PER_SESSION, db::now_ts()))
        .await
        .map_err(ServiceError::from)
}

/// Consumes the flow of `state` if this browser (`binding`) started it. Single use: of
/// concurrent calls with the same state, at most one returns the flow.
pub async fn take(
    db: &DbPool,
    binding: &str,
    state: &str,
) -> Result<Result<PendingFlow, Missing>, ServiceError> {
    let (state_hash, binding) = (sha256_hex(state), sha256_hex(binding));
    let row = db
        .run(move |conn| store::take(conn, &state_hash, &binding))
        .await
        .map_err(ServiceError::from)?;
    let Some(row) = row else {
        return Ok(Err(Missing::Unknown));
    };
    if db::now_ts() >= row.expires_at {
        return Ok(Err(Missing::Expired));
    }
    let purpose = match (row.purpose.as_str(), row.link_user_id) {
        ("link", Some(user_id)) => Purpose::Link { user_id },
        ("login", None) => Purpose::Login,
        _ => {
            return Err(ServiceError::Db(db::DbError::Corrupt {
                table: "oidc_flows",
                detail: format!("unknown purpose {:?}", row.purpose),
            }));
        }
    };
    Ok(Ok(PendingFlow {
        nonce: row.nonce,
        pkce_verifier: row.pkce_verifier,
        provider: row.provider,
        fingerprint: row.fingerprint,
        started_at: row.created_at,
        purpose,
        next: row.next,
        redirect_uri: row.redirect_uri,
    }))
}

#[cfg(test)]
mod tests {
    use super::sha256_hex;

    #[test]
    fn hashes_are_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
