//! The session cookie and what Hallpass keeps in a session.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::AppendHeaders;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use time::OffsetDateTime;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::config::Config;
use crate::domain::User;
pub use crate::service::sessions::SignedIn;
use crate::service::sessions::{
    self as store, AUTH_AT_KEY, CSRF_KEY, EXPIRES_KEY, USER_ID_KEY, VERSION_KEY, VIA_KEY, VIA_OIDC,
    expiry_for, from_unix_ms, unix_ms,
};
use crate::state::AppState;

pub const COOKIE_NAME: &str = "hallpass_session";

/// Anonymous sessions only carry a CSRF token for the sign-in form; they need not live long.
const ANONYMOUS_LIFETIME: time::Duration = time::Duration::hours(12);

/// The session cookie's attributes. With `session.cookie_domain` it is shared with every
/// host of that domain (forward-auth needs it at the guarded apps' hosts); tower-sessions
/// puts the same `Domain` on the removal cookie, so every sign-out clears it there too.
pub fn layer(state: &AppState) -> SessionManagerLayer<store::Store> {
    let layer = SessionManagerLayer::new(state.sessions.clone())
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.cookie_secure())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(ANONYMOUS_LIFETIME));
    match &state.config.session.cookie_domain {
        Some(domain) => layer.with_domain(domain.as_str().to_owned()),
        None => layer,
    }
}

pub async fn signed_in(
    session: &Session,
) -> Result<Option<SignedIn>, tower_sessions::session::Error> {
    let Some(user_id) = session.get::<i64>(USER_ID_KEY).await? else {
        return Ok(None);
    };
    let version = session.get::<i64>(VERSION_KEY).await?;
    let auth_at = session.get::<i64>(AUTH_AT_KEY).await?;
    let expires_at = session.get::<i64>(EXPIRES_KEY).await?;
    let via = session.get::<i64>(VIA_KEY).await?;
    Ok(SignedIn::from_data(|key| match key {
        USER_ID_KEY => Some(user_id),
        VERSION_KEY => version,
        AUTH_AT_KEY => auth_at,
        VIA_KEY => via,
        _ => expires_at,
    }))
}

/// Starts a signed-in session: a new session id (no fixation), a new CSRF token, and an
/// expiry at the idle timeout, capped by the absolute lifetime. `device` is recorded for
/// "Your sessions" (the store moves it out of the data into the row's own columns).
pub async fn sign_in(
    session: &Session,
    user: &User,
    config: &Config,
    device: &super::client::Device,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session
        .insert(store::CLIENT_IP_KEY, device.ip.to_string())
        .await?;
    if let Some(ua) = &device.user_agent {
        session.insert(store::USER_AGENT_KEY, ua).await?;
    }
    let auth_at = unix_ms(OffsetDateTime::now_utc());
    // A sign-in says how it was made itself ([`mark_oidc`]); nothing carries over.
    session.remove_value(VIA_KEY).await?;
    session.insert(USER_ID_KEY, user.id).await?;
    session.insert(VERSION_KEY, user.session_version).await?;
    session.insert(AUTH_AT_KEY, auth_at).await?;
    session.insert(CSRF_KEY, new_token()).await?;
    let expiry = expiry_for(auth_at, config);
    session.insert(EXPIRES_KEY, unix_ms(expiry)).await?;
    session.set_expiry(Some(Expiry::AtDateTime(expiry)));
    Ok(())
}

/// Records that the session just signed in ([`sign_in`]) came through an OpenID provider.
pub async fn mark_oidc(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.insert(VIA_KEY, VIA_OIDC).await
}

/// Ends the session: the row is deleted and the cookie removed.
pub async fn sign_out(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.flush().await
}

/// Sets the session cookie again, with today's attributes. A browser signed in before
/// `session.cookie_domain` was set holds a cookie for the sign-in host alone, which the apps
/// never receive: their proxy sends the browser to `/login?rd=…`, which (signed in) sends it
/// back — a loop, unless the cookie is set again, now for the domain. (Marks the session
/// modified; `pin_expiry` then keeps its expiry.)
pub fn reissue(session: &Session) {
    session.set_expiry(session.expiry());
}

/// A removal of the host-only session cookie, for sign-out when `session.cookie_domain` is
/// set. A cookie set before the domain was configured belongs to the sign-in host alone and
/// stays in the browser beside the shared one (browsers keep both, and send both). Left
/// there after sign-out, that dead cookie would be sent beside the next session's, and which
/// of two same-named cookies a server reads depends on their order: the person could appear
/// signed out at the sign-in host while the apps see them signed in.
pub fn leftover_removal(config: &Config) -> Option<AppendHeaders<[(HeaderName, HeaderValue); 1]>> {
    config.session.cookie_domain.as_ref()?;
    let secure = if config.cookie_secure() {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE_NAME}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax{secure}"
    );
    let value = HeaderValue::from_str(&value).ok()?;
    Some(AppendHeaders([(header::SET_COOKIE, value)]))
}

/// Slides the idle expiry forward and returns the expiry the session must keep. Writing
/// the row on every request would turn each page view into a database write, so it moves
/// only once a tenth of the idle timeout (at most an hour) has passed.
pub async fn extend(
    session: &Session,
    s: &SignedIn,
    config: &Config,
) -> Result<OffsetDateTime, tower_sessions::session::Error> {
    match s.extension_due(config) {
        Some(target) => {
            session.insert(EXPIRES_KEY, unix_ms(target)).await?;
            session.set_expiry(Some(Expiry::AtDateTime(target)));
            Ok(target)
        }
        None => Ok(from_unix_ms(s.expires_at).unwrap_or_else(|| expiry_for(s.auth_at, config))),
    }
}

/// After the handler ran: if it changed this signed-in session, keep the session's expiry
/// (otherwise the store would write the layer's default expiry). A new sign-in inside the
/// request set its own expiry and is left alone.
pub async fn pin_expiry(session: &Session, s: &SignedIn, expiry: OffsetDateTime) {
    if !session.is_modified() {
        return;
    }
    if let Ok(Some(auth_at)) = session.get::<i64>(AUTH_AT_KEY).await
        && auth_at == s.auth_at
    {
        session.set_expiry(Some(Expiry::AtDateTime(expiry)));
    }
}

/// The CSRF token for this request's forms (see `csrf`: a signed-in session's own token, or
/// a signed token that needs no storage for everyone else).
pub async fn csrf_token(session: &Session) -> Result<String, tower_sessions::session::Error> {
    super::csrf::page_token(session).await
}

/// A signed-in session's own CSRF token, created on first use (sessions signed in before
/// tokens were issued at sign-in have none yet).
pub async fn session_csrf_token(
    session: &Session,
) -> Result<String, tower_sessions::session::Error> {
    if let Some(t) = session.get::<String>(CSRF_KEY).await? {
        return Ok(t);
    }
    let t = new_token();
    session.insert(CSRF_KEY, &t).await?;
    Ok(t)
}

/// Whether the session carries a signed-in user (before any checks of that user).
pub async fn is_signed_in(session: &Session) -> Result<bool, tower_sessions::session::Error> {
    Ok(session.get::<i64>(USER_ID_KEY).await?.is_some())
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

/// Keeps this session valid after its user's `session_version` was bumped on purpose (the
/// user linked or unlinked an identity here: their *other* sessions end, this one does not).
/// Services call it through the actor ([`crate::service::Actor::keeping`]).
#[async_trait::async_trait]
impl crate::service::OwnSession for Session {
    async fn keep_at_version(
        &self,
        session_version: i64,
    ) -> Result<(), crate::service::ServiceError> {
        self.insert(VERSION_KEY, session_version)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session store: keeping the session at its new version");
                crate::service::ServiceError::Internal("session store")
            })
    }
}
