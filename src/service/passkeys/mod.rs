//! Passkeys (WebAuthn, with webauthn-rs): several per account, each a way to sign in on its own
//! (a discoverable credential: no username typed) and a second factor after a password.
//!
//! A ceremony has two halves: `start_*` returns the options for the browser and a
//! [`Ceremony`] that the caller keeps in the visitor's server-side session; `finish_*` takes it
//! back with the browser's answer. A ceremony is good once, for five minutes (the crate's
//! authenticator timeout), and only for the purpose it was started for.
//!
//! The relying party is `server.public_url`: its host is the id browsers bind passkeys to.
//! Without it (or over plain http other than localhost) passkeys are off, with a sentence
//! saying why ([`availability`]).
//!
//! Parts: `register` (adding, listing, renaming, removing; and the passkey that creates an
//! account from an invite, verified here and stored by `service::invites` in the same write
//! as the account), `sign_in` (the discoverable sign-in and the second step). This file: the
//! relying party and the ceremony state.

mod register;
mod sign_in;

pub use register::{
    PasskeyView, VerifiedPasskey, finish_registration, list, remove, rename, start_registration,
    start_sign_up, store_in, verify_sign_up,
};
pub use sign_in::{
    finish_second_factor, finish_sign_in, has_passkeys, start_second_factor, start_sign_in,
};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{Webauthn, WebauthnBuilder};

use super::{Refusal, ServiceError};
use crate::config::Config;
use crate::service::sessions::unix_ms;

/// How long a started ceremony may wait for the browser's answer (the crate tells browsers the
/// same five minutes).
const LIFETIME_MS: i64 = 5 * 60 * 1000;

/// What a ceremony was started for; a ceremony answers only its own purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// Adding a passkey to a signed-in account.
    Register,
    /// Signing in with a passkey alone.
    SignIn,
    /// The second step after a password.
    SecondFactor,
    /// Creating an account (from an invite) whose first way in is this passkey.
    SignUp,
}

/// A ceremony in progress: the crate's state (challenge and all), for the server-side session
/// only — it must never travel to the browser.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ceremony {
    purpose: Purpose,
    /// The account it was started for (none for a discoverable sign-in).
    user_id: Option<i64>,
    /// The account's user handle (registration only).
    handle: Option<String>,
    /// What a sign-up ceremony is bound to (the invite and the username it was started
    /// for): finishing it for anything else is refused.
    #[serde(default)]
    subject: Option<String>,
    started_ms: i64,
    state: serde_json::Value,
}

impl Ceremony {
    fn new(
        purpose: Purpose,
        user_id: Option<i64>,
        handle: Option<String>,
        state: &impl Serialize,
    ) -> Result<Self, ServiceError> {
        Ok(Self {
            purpose,
            user_id,
            handle,
            subject: None,
            started_ms: unix_ms(OffsetDateTime::now_utc()),
            state: serde_json::to_value(state)
                .map_err(|_| ServiceError::Internal("could not keep the passkey ceremony"))?,
        })
    }

    /// The crate's state, if a ceremony was kept, is for `purpose` and `user_id`, and is not
    /// too old. A missing one (never started, used already, or the session gone) is a refused
    /// passkey like any other, so it is audited and counted the same.
    fn open<T: serde::de::DeserializeOwned>(
        kept: Option<Self>,
        purpose: Purpose,
        user_id: Option<i64>,
    ) -> Result<T, ServiceError> {
        let Some(this) = kept else {
            return Err(Refusal::InvalidPasskey.into());
        };
        this.open_own(purpose, user_id, None)
    }

    fn open_own<T: serde::de::DeserializeOwned>(
        self,
        purpose: Purpose,
        user_id: Option<i64>,
        subject: Option<&str>,
    ) -> Result<T, ServiceError> {
        let fresh =
            unix_ms(OffsetDateTime::now_utc()) < self.started_ms.saturating_add(LIFETIME_MS);
        let own = self.purpose == purpose
            && self.user_id == user_id
            && self.subject.as_deref() == subject;
        if !own || !fresh {
            return Err(Refusal::InvalidPasskey.into());
        }
        serde_json::from_value(self.state).map_err(|_| Refusal::InvalidPasskey.into())
    }
}

/// Whether passkeys can be used here; the reason when not (for pages and the API alike).
pub fn availability(config: &Config) -> Result<(), String> {
    relying_party(config).map(|_| ()).map_err(|e| match e {
        ServiceError::Refused(Refusal::PasskeysUnavailable(why)) => why,
        other => other.to_string(),
    })
}

/// The relying party of `server.public_url`, or why there is none.
fn relying_party(config: &Config) -> Result<Webauthn, ServiceError> {
    let public = config.server.public_url.as_ref().map(|u| u.as_str());
    let rp = crate::domain::passkey::relying_party(public).map_err(Refusal::PasskeysUnavailable)?;
    WebauthnBuilder::new(&rp.id, &rp.origin)
        .and_then(|b| b.rp_name("Hallpass").build())
        .map_err(|e| {
            Refusal::PasskeysUnavailable(format!(
                "Passkeys are off: server.public_url cannot be a WebAuthn relying party ({e})."
            ))
            .into()
        })
}

/// The browser's JSON answer, parsed; anything malformed is a refused passkey (never a 500).
fn parse_answer<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ServiceError> {
    serde_json::from_str(raw).map_err(|_| Refusal::InvalidPasskey.into())
}

/// Options for the browser, as JSON.
fn options(value: &impl Serialize) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(value)
        .map_err(|_| ServiceError::Internal("could not encode passkey options"))
}

/// A passkey id from a path: anything that is not a number names no passkey.
pub fn parse_id(raw: &str) -> Result<i64, ServiceError> {
    raw.parse()
        .map_err(|_| crate::domain::refusal::Missing::Passkey.into())
}

/// A credential id as stored (base64url, no padding).
fn credential_key(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<serde_json::Value, ServiceError>) -> bool {
        matches!(r, Err(ServiceError::Refused(Refusal::InvalidPasskey)))
    }

    #[test]
    fn a_ceremony_answers_only_its_purpose_account_and_time() {
        let state = serde_json::json!({ "challenge": "x" });
        let c = Ceremony::new(Purpose::SecondFactor, Some(7), None, &state).unwrap();
        assert_eq!(
            Ceremony::open::<serde_json::Value>(Some(c.clone()), Purpose::SecondFactor, Some(7))
                .unwrap(),
            state
        );
        assert!(refused(Ceremony::open(
            Some(c.clone()),
            Purpose::SignIn,
            Some(7)
        )));
        assert!(refused(Ceremony::open(
            Some(c.clone()),
            Purpose::SecondFactor,
            Some(8)
        )));
        assert!(refused(Ceremony::open(
            None,
            Purpose::SecondFactor,
            Some(7)
        )));
        let old = Ceremony {
            started_ms: c.started_ms - LIFETIME_MS - 1,
            ..c
        };
        assert!(refused(Ceremony::open(
            Some(old),
            Purpose::SecondFactor,
            Some(7)
        )));
    }

    #[test]
    fn a_sign_up_ceremony_answers_only_its_subject() {
        let state = serde_json::json!({ "challenge": "y" });
        let mut c = Ceremony::new(Purpose::SignUp, None, None, &state).unwrap();
        c.subject = Some("invite-a:kim".into());
        let open = |c: &Ceremony, subject: Option<&str>| {
            c.clone()
                .open_own::<serde_json::Value>(Purpose::SignUp, None, subject)
        };
        assert_eq!(open(&c, Some("invite-a:kim")).unwrap(), state);
        assert!(refused(open(&c, Some("invite-b:kim"))));
        assert!(refused(open(&c, Some("invite-a:lee"))));
        assert!(refused(open(&c, None)));
        // A ceremony of another purpose (no subject) never finishes a sign-up.
        let other = Ceremony::new(Purpose::Register, None, None, &state).unwrap();
        assert!(refused(other.open_own(
            Purpose::SignUp,
            None,
            Some("invite-a:kim")
        )));
    }

    #[test]
    fn path_ids_are_numbers() {
        assert_eq!(parse_id("12").unwrap(), 12);
        assert!(matches!(
            parse_id("abc"),
            Err(ServiceError::Refused(Refusal::NotFound(_)))
        ));
    }
}
