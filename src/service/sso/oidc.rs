//! The OpenID Connect relying party: discovery (cached per provider), the authorization
//! request with PKCE, and the verified result of a callback. The token checks — signature,
//! issuer, audience, expiry, nonce — are the openidconnect crate's; Hallpass adds the two it
//! leaves out: `azp` (when present) must be our client id, and `iat` may not lie in the
//! future beyond the configured clock skew. Every request goes through
//! [`super::http::ProviderClient`], which caps the size of answers. What can go wrong, and
//! how the crate's errors map to it, is in `errors`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, SignatureVerificationError, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::http::{HttpError, ProviderClient};
use crate::domain::sso::{self, Provider};

mod errors;
pub use errors::{DiscoveryProblem, FlowError};
use errors::{classify, describe_token_error};

/// A sign-in that was started and has not come back yet; kept in the `oidc_flows` table
/// under the hash of its `state` (see `super::flows`). Holds the PKCE verifier and nonce,
/// so it never leaves the server.
#[derive(Clone)]
pub struct PendingFlow {
    pub nonce: String,
    pub pkce_verifier: String,
    pub provider: String,
    pub fingerprint: String,
    pub started_at: i64,
    pub purpose: Purpose,
    /// Where to go afterwards (a same-site path).
    pub next: String,
    /// The redirect URI of the authorization request; the token request repeats it.
    pub redirect_uri: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Sign in (or create an account, by the provider's policy).
    Login,
    /// "Verify & Link": attach the identity to this signed-in user, keeping their session.
    Link { user_id: i64 },
}

/// What a verified ID token (and userinfo) said, cleaned.
#[derive(Debug, Clone)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// The names the provider's groups claim listed (empty when it sent none); `None` when
    /// the provider has no groups claim configured.
    pub groups: Option<Vec<String>>,
}

struct Cached {
    fingerprint: String,
    metadata: CoreProviderMetadata,
}

/// Discovery cache and the HTTP client; one per server.
pub struct OidcRuntime {
    http: ProviderClient,
    cache: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for OidcRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcRuntime").finish_non_exhaustive()
    }
}

impl Default for OidcRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl OidcRuntime {
    pub fn new() -> Self {
        Self {
            http: ProviderClient::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Drops the cached discovery of a provider (its settings changed).
    pub fn forget(&self, provider_id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(provider_id);
        }
    }

    /// Fetches the discovery document and the JWKS of `issuer`, uncached (the wizard's
    /// "Test discovery").
    pub async fn discover(&self, issuer: &str) -> Result<CoreProviderMetadata, DiscoveryProblem> {
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|e| DiscoveryProblem::Invalid(format!("bad issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &self.http)
            .await
            .map_err(|e| classify(issuer, e))?;
        if metadata.token_endpoint().is_none() {
            return Err(DiscoveryProblem::MissingEndpoints("token_endpoint".into()));
        }
        Ok(metadata)
    }

    async fn metadata(&self, p: &Provider) -> Result<CoreProviderMetadata, DiscoveryProblem> {
        let fingerprint = p.fingerprint();
        if let Ok(c) = self.cache.lock()
            && let Some(hit) = c.get(&p.id)
            && hit.fingerprint == fingerprint
        {
            return Ok(hit.metadata.clone());
        }
        let metadata = self.discover(&p.issuer).await?;
        if let Ok(mut c) = self.cache.lock() {
            c.insert(
                p.id.clone(),
                Cached {
                    fingerprint,
                    metadata: metadata.clone(),
                },
            );
        }
        Ok(metadata)
    }

    /// Fetches the JWKS again (the provider rotated its keys) and caches the result.
    async fn refresh_keys(
        &self,
        p: &Provider,
        metadata: CoreProviderMetadata,
    ) -> Result<CoreProviderMetadata, DiscoveryProblem> {
        let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Request(HttpError::TooLarge { .. }) => {
                    DiscoveryProblem::TooLarge("key set (JWKS)".into())
                }
                e => DiscoveryProblem::Unreachable(format!(
                    "fetching the JWKS failed: {}",
                    describe_token_error(&e)
                )),
            })?;
        let metadata = metadata.set_jwks(jwks);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(
                p.id.clone(),
                Cached {
                    fingerprint: p.fingerprint(),
                    metadata: metadata.clone(),
                },
            );
        }
        Ok(metadata)
    }

    /// Builds the authorization URL, and the `state` and flow to remember until the callback.
    pub async fn start(
        &self,
        p: &Provider,
        redirect_uri: &str,
        purpose: Purpose,
        next: String,
    ) -> Result<(String, String, PendingFlow), FlowError> {
        let metadata = self.metadata(p).await.map_err(FlowError::Discovery)?;
        let client = client_for(p, metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in p.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            PendingFlow {
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                provider: p.id.clone(),
                fingerprint: p.fingerprint(),
                started_at: crate::db::now_ts(),
                purpose,
                next,
                redirect_uri: redirect_uri.to_owned(),
            },
        ))
    }

    /// Redeems the code and verifies the ID token; refreshes the provider's keys once when
    /// the token is signed with a key the cached JWKS does not have. `clock_skew_secs`: how
    /// far in the future the token's `iat` may lie.
    pub async fn finish(
        &self,
        p: &Provider,
        code: String,
        flow: &PendingFlow,
        clock_skew_secs: i64,
    ) -> Result<VerifiedIdentity, FlowError> {
        let redirect_uri = flow.redirect_uri.as_str();
        let metadata = self.metadata(p).await.map_err(FlowError::Discovery)?;
        let userinfo_url = metadata.userinfo_endpoint().map(|u| u.url().clone());
        let client = client_for(p, metadata.clone(), redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| FlowError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| FlowError::TokenExchange(describe_token_error(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| FlowError::IdToken("the token response has no id_token".into()))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let checked = |c: &CoreIdTokenClaims| check_claims(c, &p.client_id, clock_skew_secs);
        let verified = {
            let verifier = client.id_token_verifier().set_allowed_algs(allowed_algs());
            id_token.claims(&verifier, &nonce).map(checked)
        };
        let subject = match verified {
            Ok(sub) => sub?,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let metadata = self
                    .refresh_keys(p, metadata)
                    .await
                    .map_err(FlowError::Discovery)?;
                let client = client_for(p, metadata, redirect_uri)?;
                let verifier = client.id_token_verifier().set_allowed_algs(allowed_algs());
                id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| FlowError::IdToken(e.to_string()))
                    .and_then(checked)?
            }
            Err(e) => return Err(FlowError::IdToken(e.to_string())),
        };
        // The signature is verified: the payload can be read for the configured claim names.
        let mut claims = jwt_payload(&id_token.to_string()).unwrap_or_default();
        if let Some(url) = userinfo_url {
            match self
                .userinfo(url, token.access_token().secret(), &subject)
                .await
            {
                Ok(extra) => {
                    for (k, v) in extra {
                        claims.entry(k).or_insert(v);
                    }
                }
                Err(e) => {
                    tracing::warn!(provider = %p.id, error = %e, "OIDC userinfo request failed; using the ID token's claims only")
                }
            }
        }
        let subject = if p.subject_claim == "sub" {
            Some(subject)
        } else {
            claim_string(&claims, &p.subject_claim)
        }
        .filter(|s| {
            !s.is_empty() && s.len() <= sso::MAX_SUBJECT && !s.chars().any(char::is_control)
        })
        .ok_or_else(|| FlowError::MissingSubject(p.subject_claim.clone()))?;
        let text = |name: &str, max: usize| {
            claim_string(&claims, name).and_then(|v| sso::clean_claim(&v, max))
        };
        Ok(VerifiedIdentity {
            issuer: p.issuer.clone(),
            subject,
            username: text(&p.username_claim, 100),
            email: text(&p.email_claim, sso::MAX_CLAIM_EMAIL),
            display_name: text("name", sso::MAX_CLAIM_NAME),
            groups: p
                .groups_claim
                .as_deref()
                .map(|name| claim_groups(&claims, name)),
        })
    }

    async fn userinfo(
        &self,
        url: url::Url,
        access_token: &str,
        subject: &str,
    ) -> Result<Map<String, Value>, String> {
        let response = self
            .http
            .get_with_bearer(url, access_token)
            .await
            .map_err(|e| describe_token_error(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let body: Map<String, Value> = serde_json::from_slice(response.body()).map_err(|_| {
            "the answer is not a JSON object (signed userinfo is not supported)".to_owned()
        })?;
        // OIDC Core 5.3.2: userinfo for another subject must not be used.
        if body.get("sub").and_then(Value::as_str) != Some(subject) {
            return Err("its sub does not match the ID token".into());
        }
        Ok(body)
    }
}

fn client_for(
    p: &Provider,
    metadata: CoreProviderMetadata,
    redirect_uri: &str,
) -> Result<
    openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    FlowError,
> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| FlowError::Config(format!("bad redirect URI: {e}")))?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        p.client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
    )
    .set_redirect_uri(redirect))
}

/// The checks the openidconnect crate leaves to its user, on a token whose signature,
/// issuer, audience, expiry and nonce it verified. Returns the subject.
fn check_claims(
    claims: &CoreIdTokenClaims,
    client_id: &str,
    clock_skew_secs: i64,
) -> Result<String, FlowError> {
    // OIDC Core 3.1.3.7 (5): a token issued to another party (`azp`) is not for us, even if
    // our client id is among its audiences.
    if let Some(azp) = claims.authorized_party()
        && azp.as_str() != client_id
    {
        return Err(FlowError::IdToken(format!(
            "the token was issued to another client (azp \"{}\")",
            azp.as_str()
        )));
    }
    // OIDC Core 3.1.3.7 (10): a token "issued" in the future comes from a broken clock or a
    // forger; accepting it would let it outlive any expiry reasoning based on `iat`.
    let issued = claims.issue_time().timestamp();
    let now = crate::db::now_ts();
    if issued > now.saturating_add(clock_skew_secs) {
        return Err(FlowError::IdToken(format!(
            "the token's iat lies {} s in the future (allowed clock skew: {clock_skew_secs} s)",
            issued - now
        )));
    }
    Ok(claims.subject().as_str().to_owned())
}

fn allowed_algs() -> Vec<CoreJwsSigningAlgorithm> {
    vec![
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ]
}

fn jwt_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The group names a groups claim lists: a JSON array of strings (the usual form) or one
/// string of names separated by commas; cleaned, at most 256 names of 64 characters.
fn claim_groups(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let raw: Vec<String> = match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    raw.iter()
        .filter_map(|g| sso::clean_claim(g, 64))
        .take(256)
        .collect()
}

fn claim_string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::claim_groups;
    use serde_json::{Map, Value, json};

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn groups_are_read_from_an_array_or_a_comma_separated_string() {
        let c = claims(
            json!({"groups": ["admins", " family ", 5, "", "ev\u{202E}il"], "g": "a, b,,c"}),
        );
        assert_eq!(claim_groups(&c, "groups"), ["admins", "family", "evil"]);
        assert_eq!(claim_groups(&c, "g"), ["a", "b", "c"]);
        assert!(claim_groups(&c, "missing").is_empty());
        let many = claims(json!({ "groups": vec!["x"; 300] }));
        assert_eq!(claim_groups(&many, "groups").len(), 256);
    }
}
