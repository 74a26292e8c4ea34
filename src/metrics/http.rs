//! HTTP requests by route pattern, method and status, and their latency.
//!
//! A tower layer added to the router only when metrics are on (see `web::router`): off, a
//! request passes no extra code at all. On, a request costs two map look-ups under a read
//! lock and two atomic adds; the labels borrow: the method is a `&'static str`, the route
//! is axum's `MatchedPath` (a shared `Arc<str>`, cloned without copying the text) and the
//! status a number, so no `String` is made per request.

use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Metrics;

/// The route pattern a request matched (`/admin/users/{id}`), or `unmatched` for requests
/// no route took (404s): never the path itself, which may name an account or carry a token.
#[derive(Clone, Debug)]
pub struct Route(Option<MatchedPath>);

impl Route {
    /// A request no route took.
    #[cfg(test)]
    pub(super) fn unmatched() -> Self {
        Route(None)
    }

    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    method: &'static str,
    route: Route,
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

#[derive(Debug)]
pub(super) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

/// Seconds, from 0.1 ms to about 6 s: forward-auth answers take well under a millisecond,
/// a sign-in with its hash tens of milliseconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.5, 13))
}

impl HttpMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route pattern and status",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from the request's arrival at the router to its response head, by method and route pattern",
            latency.clone(),
        );
        Self { requests, latency }
    }

    pub(super) fn record(&self, method: &'static str, route: Route, status: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        self.latency
            .get_or_create(&LatencyLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }
}

/// The standard methods by name; anything else is `other` (a client chooses the method,
/// and a label must not take any value a client sends).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The layer `web::router` adds when metrics are on.
#[derive(Clone, Debug)]
pub struct HttpLayer {
    metrics: Arc<Metrics>,
}

impl HttpLayer {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for HttpLayer {
    type Service = HttpService<S>;
    fn layer(&self, inner: S) -> HttpService<S> {
        HttpService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<Request<B>> for HttpService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let method = method_label(req.method());
        let route = Route(req.extensions().get::<MatchedPath>().cloned());
        ResponseFuture {
            started: Instant::now(),
            inner: self.inner.call(req),
            seen: Some((method, route, Arc::clone(&self.metrics))),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, recorded when its head is ready.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        seen: Option<(&'static str, Route, Arc<Metrics>)>,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Ok(res), Some((method, route, metrics))) = (&out, this.seen.take()) {
            metrics
                .http
                .record(method, route, res.status().as_u16(), *this.started);
        }
        Poll::Ready(out)
    }
}
