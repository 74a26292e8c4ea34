//! The one HTTP client every request to an OpenID provider goes through (discovery, JWKS,
//! token, userinfo). It follows no redirects (a provider could otherwise point Hallpass
//! anywhere), gives up after 10 s, and stops reading an answer at [`MAX_RESPONSE_BYTES`]:
//! a provider — or whatever answers at a mistyped issuer URL — cannot make Hallpass buffer
//! megabytes per sign-in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use openidconnect::reqwest;
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The most a provider's answer may weigh. Discovery documents, key sets, token and
/// userinfo answers are a few kilobytes; Librariarr uses the same cap.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a request to a provider produced no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: DNS, refused connection, TLS, timeout; or a request that cannot be built.
    #[error("request to the provider failed")]
    Request(#[source] reqwest::Error),
    /// The answer is bigger than [`MAX_RESPONSE_BYTES`]; reading stopped there.
    #[error("the answer from {url} is larger than {limit} bytes; Hallpass stopped reading it")]
    TooLarge { url: String, limit: usize },
    #[error("the answer could not be handed over")]
    Http(#[source] openidconnect::http::Error),
    /// The HTTP client itself could not be set up (its TLS backend).
    #[error("cannot build the HTTP client for OpenID Connect: {0}")]
    Client(String),
}

/// A reqwest client with the response cap; implements openidconnect's [`AsyncHttpClient`].
///
/// The client is built on first use, not at start-up: building it loads the TLS stack and
/// its root certificates, which an instance without OpenID providers never needs (about a
/// megabyte of resident memory after start-up, issue 12 point 5).
#[derive(Clone)]
pub struct ProviderClient {
    inner: Arc<OnceLock<Result<reqwest::Client, String>>>,
    limit: usize,
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Default for ProviderClient {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderClient {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(OnceLock::new()),
            limit: MAX_RESPONSE_BYTES,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, HttpError> {
        self.inner
            .get_or_init(|| {
                reqwest::Client::builder()
                    // Following redirects would let a provider point Hallpass anywhere (SSRF).
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(Duration::from_secs(10))
                    .connect_timeout(Duration::from_secs(5))
                    .user_agent(concat!("hallpass/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| HttpError::Client(e.clone()))
    }

    /// A GET request with a bearer token (userinfo), through the same cap.
    pub async fn get_with_bearer(
        &self,
        url: url::Url,
        token: &str,
    ) -> Result<HttpResponse, HttpError> {
        let request = self
            .client()?
            .get(url)
            .bearer_auth(token)
            .header("accept", "application/json")
            .build()
            .map_err(HttpError::Request)?;
        self.execute(request).await
    }

    /// Sends the request and reads the answer chunk by chunk, refusing it as soon as it is
    /// announced or found to be larger than the cap.
    async fn execute(&self, request: reqwest::Request) -> Result<HttpResponse, HttpError> {
        let mut url = request.url().clone();
        // Only for the log line: queries and fragments are not needed to tell which endpoint.
        url.set_query(None);
        url.set_fragment(None);
        let mut response = self
            .client()?
            .execute(request)
            .await
            .map_err(HttpError::Request)?;
        let too_large = || {
            tracing::warn!(url = %url, limit = self.limit, "OpenID provider answer exceeds the size limit; reading stopped and the request failed");
            HttpError::TooLarge {
                url: url.to_string(),
                limit: self.limit,
            }
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(too_large());
        }
        let mut builder = openidconnect::http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(HttpError::Request)? {
            if body.len() + chunk.len() > self.limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(HttpError::Http)
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(HttpError::Request)?;
            self.execute(request).await
        })
    }
}
