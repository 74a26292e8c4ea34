//! Single sign-on: providers (environment + admin UI), the instance switches, and the
//! identities linked to users. `oidc` talks to the providers; `signin` runs the browser's
//! round trip through them; `identities` decides who an identity is.

pub mod discovery;
pub mod flows;
pub mod http;
pub mod identities;
pub mod lookup;
pub mod oidc;
pub mod providers;
pub mod signin;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::db::settings::Settings;
use crate::domain::sso::Provider;
use crate::secret::ServerSecret;
use crate::sso_env::SsoEnv;

const SECRET_KEY_LABEL: &str = "oidc client secret v1";

/// Encrypts a client secret for storage: base64(nonce ‖ ciphertext+tag).
pub fn seal(secret: &ServerSecret, plaintext: &str) -> Option<String> {
    let cipher = XChaCha20Poly1305::new(&secret.derive_key(SECRET_KEY_LABEL).into());
    let mut nonce = [0u8; 24];
    rand::rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(STANDARD.encode(out))
}

/// Decrypts what [`seal`] produced; `None` when it was sealed under another server secret.
pub fn open(secret: &ServerSecret, sealed: &str) -> Option<String> {
    open_with(&sealing_key(secret), sealed)
}

/// The key [`seal`] uses, for code that cannot hold the server secret itself (a database
/// closure).
fn sealing_key(secret: &ServerSecret) -> [u8; 32] {
    secret.derive_key(SECRET_KEY_LABEL)
}

/// [`open`] with the key of [`sealing_key`].
fn open_with(key: &[u8; 32], sealed: &str) -> Option<String> {
    let raw = STANDARD.decode(sealed).ok()?;
    if raw.len() < 24 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(24);
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let pt = cipher.decrypt(XNonce::from_slice(nonce), ct).ok()?;
    String::from_utf8(pt).ok()
}

/// The sign-in switches as they apply right now, after the break-glass override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInModes {
    /// "Sign in with …" buttons are offered and callbacks are accepted.
    pub sso: bool,
    /// The password form is offered and accepted.
    pub local: bool,
    /// `HALLPASS_SSO_DISABLE_OVERRIDE` is set.
    pub overridden: bool,
    /// The stored switches, before the override.
    pub stored_sso: bool,
    pub stored_local: bool,
}

impl SignInModes {
    pub fn of(settings: &Settings, env: &SsoEnv) -> Self {
        let stored_sso = settings.sso_enabled.unwrap_or(!env.providers.is_empty());
        let stored_local = settings.local_login_enabled;
        Self {
            sso: stored_sso && !env.disable_override,
            // Password sign-in can only be off while SSO could take its place.
            local: stored_local || env.disable_override || !stored_sso,
            overridden: env.disable_override,
            stored_sso,
            stored_local,
        }
    }
}

/// Providers whose buttons the sign-in page shows.
pub fn login_buttons(modes: SignInModes, providers: &[Provider]) -> Vec<(String, String)> {
    if !modes.sso {
        return Vec::new();
    }
    providers
        .iter()
        .filter(|p| p.enabled)
        .map(|p| (p.id.clone(), p.label.clone()))
        .collect()
}
