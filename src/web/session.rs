//! The session cookie and what Hallpass keeps in a session.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::config::Config;
use crate::db::sessions::{DbSessionStore, USER_ID_KEY};
use crate::domain::User;
use crate::state::AppState;

pub const COOKIE_NAME: &str = "hallpass_session";
const VERSION_KEY: &str = "sv";
const AUTH_AT_KEY: &str = "auth_at";
const CSRF_KEY: &str = "csrf";

/// Anonymous sessions only carry a CSRF token for the sign-in form; they need not live long.
const ANONYMOUS_LIFETIME: time::Duration = time::Duration::hours(12);

pub fn layer(state: &AppState) -> SessionManagerLayer<DbSessionStore> {
    SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.cookie_secure())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(ANONYMOUS_LIFETIME))
}

/// What a signed-in session records about its user.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub user_id: i64,
    pub session_version: i64,
    pub auth_at: i64,
}

pub async fn signed_in(
    session: &Session,
) -> Result<Option<SignedIn>, tower_sessions::session::Error> {
    let Some(user_id) = session.get::<i64>(USER_ID_KEY).await? else {
        return Ok(None);
    };
    Ok(Some(SignedIn {
        user_id,
        session_version: session.get::<i64>(VERSION_KEY).await?.unwrap_or(-1),
        auth_at: session.get::<i64>(AUTH_AT_KEY).await?.unwrap_or(0),
    }))
}

/// Starts a signed-in session: a new session id (no fixation), a new CSRF token, and an
/// expiry at the idle timeout, capped by the absolute lifetime.
pub async fn sign_in(
    session: &Session,
    user: &User,
    config: &Config,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    let now = OffsetDateTime::now_utc();
    session.insert(USER_ID_KEY, user.id).await?;
    session.insert(VERSION_KEY, user.session_version).await?;
    session.insert(AUTH_AT_KEY, now.unix_timestamp()).await?;
    session.insert(CSRF_KEY, new_token()).await?;
    session.set_expiry(Some(Expiry::AtDateTime(expiry_for(
        now.unix_timestamp(),
        config,
    ))));
    Ok(())
}

/// Ends the session: the row is deleted and the cookie removed.
pub async fn sign_out(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.flush().await
}

/// `now + idle`, never past `auth_at + max_lifetime`.
fn expiry_for(auth_at: i64, config: &Config) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let idle =
        time::Duration::try_from(config.session.idle_timeout.get()).unwrap_or(time::Duration::DAY);
    let max =
        time::Duration::try_from(config.session.max_lifetime.get()).unwrap_or(time::Duration::DAY);
    let absolute = OffsetDateTime::from_unix_timestamp(auth_at).unwrap_or(now) + max;
    (now + idle).min(absolute)
}

/// Whether the absolute lifetime of a signed-in session is over.
pub fn lifetime_over(s: &SignedIn, config: &Config) -> bool {
    let max = i64::try_from(config.session.max_lifetime.get().as_secs()).unwrap_or(i64::MAX);
    OffsetDateTime::now_utc().unix_timestamp() >= s.auth_at.saturating_add(max)
}

/// Slides the idle expiry forward. Writing the row on every request would turn each page
/// view into a database write, so it moves only once a tenth of the idle timeout (at most
/// an hour) has passed.
pub fn extend(session: &Session, s: &SignedIn, config: &Config) {
    let target = expiry_for(s.auth_at, config);
    let idle = config.session.idle_timeout.get();
    let grace = (idle / 10).min(std::time::Duration::from_secs(3600));
    let grace = time::Duration::try_from(grace).unwrap_or(time::Duration::HOUR);
    if target - session.expiry_date() > grace {
        session.set_expiry(Some(Expiry::AtDateTime(target)));
    }
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String, tower_sessions::session::Error> {
    if let Some(t) = session.get::<String>(CSRF_KEY).await? {
        return Ok(t);
    }
    let t = new_token();
    session.insert(CSRF_KEY, &t).await?;
    Ok(t)
}

/// The session's CSRF token if it has one (never creates one).
pub async fn existing_csrf_token(session: &Session) -> Option<String> {
    session.get::<String>(CSRF_KEY).await.ok().flatten()
}

fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Status for a failing session store.
pub const STORE_FAILURE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
