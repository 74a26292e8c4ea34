//! The session store and what the session layer may know of it. The store is the database
//! one (`db::sessions`); the web layer builds its session layer from [`store`] and never
//! names the database module. What a signed-in session records ([`SignedIn`]) and its
//! lifetime rules live here too, shared by the session layer and forward-auth (which reads
//! the cookie's session without a session layer: see `service::authz`).

use time::OffsetDateTime;

mod cached;

use crate::config::Config;
pub use crate::db::sessions::{CLIENT_IP_KEY, USER_AGENT_KEY, USER_ID_KEY};
use crate::domain::User;
pub use cached::{CachedSignIn, Store};

/// The session's `session_version` of its user at sign-in.
pub const VERSION_KEY: &str = "sv";
/// Sign-in time (unix ms).
pub const AUTH_AT_KEY: &str = "auth_at";
/// The session's own CSRF token (see `web::csrf`).
pub const CSRF_KEY: &str = "csrf";
/// The session's own expiry (unix ms). tower-sessions does not restore a stored record's
/// expiry when it loads it, so Hallpass keeps it in the data and pins it again.
pub const EXPIRES_KEY: &str = "exp";
/// How the session was signed in when it matters to callers (`/api/auth/me`): [`VIA_OIDC`]
/// through an OpenID provider; absent for a password or a passkey.
pub const VIA_KEY: &str = "via";
pub const VIA_OIDC: i64 = 1;

/// Runs `f` — the identity check — so that the session load inside it hands over the user
/// row it read in the same query; [`loaded_user`] inside `f` takes it.
pub async fn capturing_user<F: std::future::Future>(f: F) -> F::Output {
    crate::db::sessions::capturing_user(f).await
}

/// The user row the session load inside [`capturing_user`] brought along (taken once).
/// `None` when the session names no user row, or outside that scope.
pub fn loaded_user() -> Option<User> {
    crate::db::sessions::take_loaded_user()
}

/// What a signed-in session records about its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: i64,
    pub session_version: i64,
    /// Sign-in time, unix milliseconds.
    pub auth_at: i64,
    /// When the session ends unless used again, unix milliseconds.
    pub expires_at: i64,
    /// Signed in through an OpenID provider.
    pub via_oidc: bool,
}

impl SignedIn {
    /// Reads a session's data (`get` returns the integer under a key); `None`: nobody is
    /// signed in.
    pub fn from_data(get: impl Fn(&str) -> Option<i64>) -> Option<SignedIn> {
        Some(SignedIn {
            user_id: get(USER_ID_KEY)?,
            session_version: get(VERSION_KEY).unwrap_or(-1),
            auth_at: get(AUTH_AT_KEY).unwrap_or(0),
            expires_at: get(EXPIRES_KEY).unwrap_or(0),
            via_oidc: get(VIA_KEY) == Some(VIA_OIDC),
        })
    }

    /// Whether the absolute lifetime (`session.max_lifetime`) is over.
    pub fn lifetime_over(&self, config: &Config) -> bool {
        let max = i64::try_from(config.session.max_lifetime.get().as_millis()).unwrap_or(i64::MAX);
        unix_ms(OffsetDateTime::now_utc()) >= self.auth_at.saturating_add(max)
    }

    /// The new idle expiry when it is time to slide it forward. Writing the row on every
    /// request would turn each page view into a database write, so it moves only once a
    /// tenth of the idle timeout (at most an hour) has passed.
    pub fn extension_due(&self, config: &Config) -> Option<OffsetDateTime> {
        let target = expiry_for(self.auth_at, config);
        let grace =
            (config.session.idle_timeout.get() / 10).min(std::time::Duration::from_secs(3600));
        let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        (unix_ms(target) - self.expires_at > grace).then_some(target)
    }
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// `now + idle`, never past `auth_at + max_lifetime` (`auth_at` in unix milliseconds).
pub fn expiry_for(auth_at: i64, config: &Config) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let idle =
        time::Duration::try_from(config.session.idle_timeout.get()).unwrap_or(time::Duration::DAY);
    let max =
        time::Duration::try_from(config.session.max_lifetime.get()).unwrap_or(time::Duration::DAY);
    let absolute = from_unix_ms(auth_at).unwrap_or(now) + max;
    let expiry = (now + idle).min(absolute);
    // Cookies count in whole seconds (`Max-Age` is truncated): round up, or the browser would
    // drop the cookie up to a second before the session ends. The absolute limit is still
    // enforced to the millisecond by `lifetime_over`.
    if expiry.nanosecond() == 0 {
        expiry
    } else {
        OffsetDateTime::from_unix_timestamp(expiry.unix_timestamp() + 1).unwrap_or(expiry)
    }
}
