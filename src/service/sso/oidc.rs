//! The OpenID Connect relying party: discovery (cached per provider), the authorization
//! request with PKCE, and the verified result of a callback. All token checks — signature,
//! issuer, audience, expiry, nonce — are the openidconnect crate's.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, SignatureVerificationError, TokenResponse,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::sso::{self, Provider};

/// How long a started sign-in may take before its `state` is no longer accepted.
pub const FLOW_LIFETIME_SECS: i64 = 600;

/// Why discovery failed, in the words the SSO wizard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryProblem {
    /// The discovery URL answered with this HTTP status.
    HttpStatus(u16),
    /// The document names another issuer than the one configured.
    IssuerMismatch { configured: String, found: String },
    /// The document lacks an endpoint the login flow needs.
    MissingEndpoints(String),
    /// No answer at all (DNS, refused, TLS, timeout).
    Unreachable(String),
    /// An answer that is not a discovery document.
    Invalid(String),
}

impl fmt::Display for DiscoveryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryProblem::HttpStatus(s) => write!(
                f,
                "Discovery failed: the provider answered HTTP {s} at /.well-known/openid-configuration. Check the issuer URL."
            ),
            DiscoveryProblem::IssuerMismatch { configured, found } => {
                let slash_only = configured.trim_end_matches('/') == found.trim_end_matches('/');
                write!(
                    f,
                    "Issuer mismatch: the provider calls itself \"{found}\", but the issuer entered here is \"{configured}\". Use exactly the provider's value{}.",
                    if slash_only {
                        " — only the trailing slash differs"
                    } else {
                        ""
                    }
                )
            }
            DiscoveryProblem::MissingEndpoints(what) => write!(
                f,
                "The provider's discovery response is missing required endpoints ({what})."
            ),
            DiscoveryProblem::Unreachable(why) => {
                write!(f, "The provider is unreachable from Hallpass: {why}.")
            }
            DiscoveryProblem::Invalid(why) => write!(
                f,
                "The provider's answer is not a valid discovery document: {why}."
            ),
        }
    }
}

/// Why a callback did not produce a verified identity. Details go to the log, never to the
/// page: the login banner only says which kind of problem it was.
#[derive(Debug)]
pub enum FlowError {
    Discovery(DiscoveryProblem),
    /// The token endpoint refused the code (used, expired, wrong client secret, PKCE).
    TokenExchange(String),
    /// The ID token failed verification (signature, issuer, audience, expiry, nonce).
    IdToken(String),
    /// The ID token lacks the configured subject claim.
    MissingSubject(String),
    Config(String),
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Discovery(p) => write!(f, "discovery: {p}"),
            FlowError::TokenExchange(m) => write!(f, "token exchange failed: {m}"),
            FlowError::IdToken(m) => write!(f, "ID token rejected: {m}"),
            FlowError::MissingSubject(c) => write!(f, "the ID token has no usable \"{c}\" claim"),
            FlowError::Config(m) => write!(f, "configuration: {m}"),
        }
    }
}

/// A sign-in that was started and has not come back yet; kept in the browser's session.
/// Holds the PKCE verifier and nonce, so it never leaves the server.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub provider: String,
    pub fingerprint: String,
    pub started_at: i64,
    pub purpose: Purpose,
    /// Where to go afterwards (a same-site path).
    pub next: String,
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
}

struct Cached {
    fingerprint: String,
    metadata: CoreProviderMetadata,
}

/// Discovery cache and the HTTP client; one per server.
pub struct OidcRuntime {
    http: openidconnect::reqwest::Client,
    cache: Mutex<HashMap<String, Cached>>,
}

impl fmt::Debug for OidcRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcRuntime").finish_non_exhaustive()
    }
}

impl OidcRuntime {
    pub fn new() -> Result<Self, String> {
        let http = openidconnect::reqwest::Client::builder()
            // Following redirects would let a provider point Hallpass anywhere (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("hallpass/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for OpenID Connect: {e}"))?;
        Ok(Self {
            http,
            cache: Mutex::new(HashMap::new()),
        })
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
            .map_err(|e| DiscoveryProblem::Unreachable(format!("fetching the JWKS failed: {e}")))?;
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

    /// Builds the authorization URL and the flow to remember in the session.
    pub async fn start(
        &self,
        p: &Provider,
        redirect_uri: &str,
        purpose: Purpose,
        next: String,
    ) -> Result<(String, PendingFlow), FlowError> {
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
            PendingFlow {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                provider: p.id.clone(),
                fingerprint: p.fingerprint(),
                started_at: crate::db::now_ts(),
                purpose,
                next,
            },
        ))
    }

    /// Redeems the code and verifies the ID token; refreshes the provider's keys once when
    /// the token is signed with a key the cached JWKS does not have.
    pub async fn finish(
        &self,
        p: &Provider,
        redirect_uri: &str,
        code: String,
        flow: &PendingFlow,
    ) -> Result<VerifiedIdentity, FlowError> {
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
        let verified = {
            let verifier = client.id_token_verifier().set_allowed_algs(allowed_algs());
            id_token
                .claims(&verifier, &nonce)
                .map(|c| c.subject().as_str().to_owned())
        };
        let subject = match verified {
            Ok(sub) => sub,
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
                    .map(|c| c.subject().as_str().to_owned())
                    .map_err(|e| FlowError::IdToken(e.to_string()))?
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
            .get(url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let body: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| {
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

fn describe_token_error<E: std::error::Error>(e: &E) -> String {
    // The error chain names the OAuth error code (invalid_grant…) but never the code itself.
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn classify<E: std::error::Error + 'static>(
    issuer: &str,
    e: openidconnect::DiscoveryError<E>,
) -> DiscoveryProblem {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Response(status, _, msg) => {
            if status.is_success() {
                DiscoveryProblem::Invalid(msg)
            } else {
                DiscoveryProblem::HttpStatus(status.as_u16())
            }
        }
        D::Validation(msg) if msg.contains("unexpected issuer") => {
            let found = msg.split('`').nth(1).map(str::to_owned).unwrap_or_default();
            DiscoveryProblem::IssuerMismatch {
                configured: issuer.to_owned(),
                found,
            }
        }
        D::Validation(msg) => DiscoveryProblem::Invalid(msg),
        D::Parse(err) => {
            let text = err.to_string();
            if text.contains("missing field") {
                let field = text
                    .split('`')
                    .nth(1)
                    .map(str::to_owned)
                    .unwrap_or_else(|| text.clone());
                DiscoveryProblem::MissingEndpoints(field)
            } else {
                DiscoveryProblem::Invalid(text)
            }
        }
        D::Request(err) => DiscoveryProblem::Unreachable(describe_token_error(&err)),
        D::UrlParse(err) => DiscoveryProblem::Invalid(err.to_string()),
        other => DiscoveryProblem::Invalid(other.to_string()),
    }
}

fn jwt_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn claim_string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
