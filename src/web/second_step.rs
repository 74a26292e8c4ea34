//! The half-signed-in state between a correct password and the second factor.
//!
//! The account waiting for its code (or for its enrolment, when the instance requires a
//! second factor it does not have yet) is kept under keys of its own, never under the
//! signed-in user's key: identity resolution, forward-auth and every guard therefore see an
//! anonymous visitor, and only the second-step routes read these keys. The state lasts ten
//! minutes, and ends when the account's `session_version` moves (a password reset, a
//! disabled account) as a signed-in session would.

use time::OffsetDateTime;
use tower_sessions::Session;

use super::session;
use crate::config::Config;
use crate::domain::User;
use crate::service::ServiceError;
use crate::service::sessions::unix_ms;
use crate::state::AppState;

const USER_KEY: &str = "2fa_user";
const VERSION_KEY: &str = "2fa_sv";
const AT_KEY: &str = "2fa_at";
const ENROL_KEY: &str = "2fa_enrol";
const NEXT_KEY: &str = "2fa_next";
/// Set while the step follows a sign-in through an OpenID provider: the session it ends in
/// says so (`/api/auth/me`'s `auth_method`).
const VIA_OIDC_KEY: &str = "2fa_oidc";

/// How long the second step may take (unix ms).
const LIFETIME_MS: i64 = 10 * 60 * 1000;

/// What the half-signed-in visitor still has to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Enter a code (or a recovery code).
    Code,
    /// Set up a second factor: the instance requires one.
    Enrol,
}

/// A half-signed-in visitor.
pub struct Pending {
    pub user: User,
    pub step: Step,
    /// Where to go once signed in (a same-site path, or an allowed app URL).
    pub next: String,
}

/// Starts the second step for `user` after a correct password: a new session id (no
/// fixation), nobody signed in.
pub async fn begin(
    session: &Session,
    user: &User,
    step: Step,
    next: &str,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.remove_value(VIA_OIDC_KEY).await?;
    session.insert(USER_KEY, user.id).await?;
    session.insert(VERSION_KEY, user.session_version).await?;
    session
        .insert(AT_KEY, unix_ms(OffsetDateTime::now_utc()))
        .await?;
    session.insert(ENROL_KEY, step == Step::Enrol).await?;
    session.insert(NEXT_KEY, next).await?;
    Ok(())
}

/// The visitor's pending second step, if any and still valid; a stale one is cleared.
pub async fn pending(state: &AppState, session: &Session) -> Result<Option<Pending>, ServiceError> {
    let store = |e: tower_sessions::session::Error| {
        tracing::error!(error = %e, "session store: reading the second step");
        ServiceError::Internal("session store")
    };
    let Some(user_id) = session.get::<i64>(USER_KEY).await.map_err(store)? else {
        return Ok(None);
    };
    let version = session.get::<i64>(VERSION_KEY).await.map_err(store)?;
    let at = session
        .get::<i64>(AT_KEY)
        .await
        .map_err(store)?
        .unwrap_or(0);
    let enrol = session.get::<bool>(ENROL_KEY).await.map_err(store)?;
    let next = session.get::<String>(NEXT_KEY).await.map_err(store)?;
    let fresh = unix_ms(OffsetDateTime::now_utc()) < at.saturating_add(LIFETIME_MS);
    let user = match fresh {
        true => crate::service::users::get(&state.db, user_id).await?,
        false => None,
    };
    match user.filter(|u| u.may_sign_in() && Some(u.session_version) == version) {
        Some(user) => Ok(Some(Pending {
            user,
            step: if enrol == Some(true) {
                Step::Enrol
            } else {
                Step::Code
            },
            next: next.unwrap_or_else(|| "/".to_owned()),
        })),
        None => {
            clear(session).await.map_err(store)?;
            Ok(None)
        }
    }
}

/// Ends the second step and signs the account in.
pub async fn finish(
    session: &Session,
    user: &User,
    config: &Config,
    device: &super::client::Device,
) -> Result<(), tower_sessions::session::Error> {
    let via_oidc = session.get::<bool>(VIA_OIDC_KEY).await?.unwrap_or(false);
    clear(session).await?;
    session::sign_in(session, user, config, device).await?;
    if via_oidc {
        session::mark_oidc(session).await?;
    }
    Ok(())
}

/// Forgets the pending second step.
pub async fn clear(session: &Session) -> Result<(), tower_sessions::session::Error> {
    for key in [
        USER_KEY,
        VERSION_KEY,
        AT_KEY,
        ENROL_KEY,
        NEXT_KEY,
        VIA_OIDC_KEY,
    ] {
        session.remove_value(key).await?;
    }
    Ok(())
}

/// After a correct password (or a provider sign-in that asks for the second factor too):
/// signs `user` in, or starts the second step. Returns where the browser goes next: `target`,
/// or the second step's page. The sign-in is counted under `method` (`/metrics`).
pub async fn after_password(
    state: &AppState,
    session: &Session,
    user: &User,
    target: &str,
    device: &super::client::Device,
    method: crate::metrics::SignInMethod,
) -> Result<String, super::error::UiError> {
    after_first_step(state, session, (user, device), target, (method, false)).await
}

/// [`after_password`] after a sign-in through an OpenID provider whose settings ask for
/// Hallpass's second factor too: the session, now or once the step is done, records it.
pub async fn after_provider(
    state: &AppState,
    session: &Session,
    user: &User,
    target: &str,
    device: &super::client::Device,
) -> Result<String, super::error::UiError> {
    let method = crate::metrics::SignInMethod::Oidc;
    after_first_step(state, session, (user, device), target, (method, true)).await
}

async fn after_first_step(
    state: &AppState,
    session: &Session,
    (user, device): (&User, &super::client::Device),
    target: &str,
    (method, via_oidc): (crate::metrics::SignInMethod, bool),
) -> Result<String, super::error::UiError> {
    use crate::metrics::SignInOutcome;
    use crate::service::two_factor::Next;
    let next = crate::service::two_factor::after_password(&state.db, user).await?;
    state.metrics.sign_in(method, SignInOutcome::of_next(&next));
    let step = match next {
        Next::Done => {
            session::sign_in(session, user, &state.config, device).await?;
            if via_oidc {
                session::mark_oidc(session).await?;
            }
            return Ok(target.to_owned());
        }
        Next::Code => Step::Code,
        Next::Enrol => Step::Enrol,
    };
    begin(session, user, step, target).await?;
    if via_oidc {
        session.insert(VIA_OIDC_KEY, true).await?;
    }
    Ok(match step {
        Step::Code => "/login/two-factor",
        Step::Enrol => "/login/two-factor/setup",
    }
    .to_owned())
}
