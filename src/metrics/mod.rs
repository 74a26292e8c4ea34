//! The Prometheus metrics of one running instance (`GET /metrics`, see docs/metrics.md).
//!
//! One [`Metrics`] per application, reached from `AppState`, holding its own `Registry`:
//! the tests run many apps in one process, and a global recorder would mix their counters.
//!
//! Every label value is a fixed word of this module (a method, an outcome, an action) or a
//! route *pattern* as written in the router (`/api/admin/users/{id}`), never a username, an
//! address, an email, a token or a raw path: a scrape must not list who signed in.
//!
//! Cost: the label sets of the counters are created once, here, and their handles kept in
//! arrays indexed by enum, so counting is one atomic add with no lookup and no allocation.
//! When `metrics.enabled` is off every recording method returns at a branch on a bool, the
//! HTTP layer is not added to the router at all and the database pool is not timed.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

mod http;
mod labels;

pub use http::{HttpLayer, HttpService, Route};
pub use labels::{ForwardAuth, SignInMethod, SignInOutcome};

use crate::service::rate_limit::Action;

/// `Content-Type` of the scrape: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of one instance; cheap to share (`Arc<Metrics>` in `AppState`).
#[derive(Debug)]
pub struct Metrics {
    enabled: bool,
    registry: Registry,
    sign_ins: [[Counter; SignInOutcome::ALL.len()]; SignInMethod::ALL.len()],
    refusals: [Counter; Action::ALL.len()],
    forward_auth: [Counter; ForwardAuth::ALL.len()],
    password_hash: Histogram,
    db_wait: Histogram,
    sessions_active: Gauge,
    http: http::HttpMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Seconds, from 0.5 ms to about 16 s: a database wait is well under a millisecond when
/// idle; an argon2 hash takes tens of milliseconds, seconds when hashes queue.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

impl Metrics {
    /// A registry with every metric of Hallpass, its label sets created (so each series is
    /// there, at 0, from the first scrape). `enabled` = `metrics.enabled`.
    pub fn new(enabled: bool) -> Self {
        let mut registry = Registry::with_prefix("hallpass");
        registry.register(
            "build",
            "Build information: the version of Hallpass (always 1)",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        let sign_in_family = Family::<SignInLabels, Counter>::default();
        let sign_ins = SignInMethod::ALL.map(|method| {
            SignInOutcome::ALL.map(|outcome| {
                sign_in_family
                    .get_or_create(&SignInLabels {
                        method: method.label(),
                        outcome: outcome.label(),
                    })
                    .clone()
            })
        });
        registry.register(
            "sign_ins",
            "Sign-in attempts by method and outcome",
            sign_in_family,
        );
        let refusal_family = Family::<ActionLabels, Counter>::default();
        let refusals = Action::ALL.map(|a| {
            refusal_family
                .get_or_create(&ActionLabels { action: a.name() })
                .clone()
        });
        registry.register(
            "rate_limit_refusals",
            "Attempts refused by the brute-force limits, by action",
            refusal_family,
        );
        let decision_family = Family::<DecisionLabels, Counter>::default();
        let forward_auth = ForwardAuth::ALL.map(|d| {
            decision_family
                .get_or_create(&DecisionLabels {
                    decision: d.label(),
                })
                .clone()
        });
        registry.register(
            "forward_auth_decisions",
            "Forward-auth answers to reverse proxies, by decision",
            decision_family,
        );
        let password_hash = Histogram::new(seconds_buckets());
        registry.register(
            "password_hash_duration_seconds",
            "Time of each argon2 computation (verifications, dummy ones included, and new hashes); its _count is the number of hashes",
            password_hash.clone(),
        );
        let db_wait = Histogram::new(seconds_buckets());
        registry.register(
            "db_pool_wait_duration_seconds",
            "Time a database task waited for a database thread and a pooled connection",
            db_wait.clone(),
        );
        let sessions_active = Gauge::default();
        registry.register(
            "sessions_active",
            "Signed-in sessions whose expiry has not passed (counted in the database at each scrape)",
            sessions_active.clone(),
        );
        let http = http::HttpMetrics::register(&mut registry);
        Self {
            enabled,
            registry,
            sign_ins,
            refusals,
            forward_auth,
            password_hash,
            db_wait,
            sessions_active,
            http,
        }
    }

    /// Whether `metrics.enabled` is on: the route exists and the recorders count.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One sign-in attempt of `method` that ended as `outcome`.
    pub fn sign_in(&self, method: SignInMethod, outcome: SignInOutcome) {
        if self.enabled {
            self.sign_ins[method as usize][outcome as usize].inc();
        }
    }

    /// A sign-in of `method` that failed with `e`.
    pub fn sign_in_failed(&self, method: SignInMethod, e: &crate::service::ServiceError) {
        self.sign_in(method, SignInOutcome::of_error(e));
    }

    /// One attempt refused by the rate limit.
    pub fn rate_limited(&self, action: Action) {
        if self.enabled
            && let Some(i) = Action::ALL.iter().position(|a| *a == action)
        {
            self.refusals[i].inc();
        }
    }

    /// One forward-auth answer.
    pub fn forward_auth(&self, decision: ForwardAuth) {
        if self.enabled {
            self.forward_auth[decision as usize].inc();
        }
    }

    /// The histogram the password hasher records into (`None` when metrics are off: then
    /// the hasher does not read the clock).
    pub fn password_hash_histogram(&self) -> Option<Histogram> {
        self.enabled.then(|| self.password_hash.clone())
    }

    /// The histogram the database pool records its waits into (`None` when off).
    pub fn db_wait_histogram(&self) -> Option<Histogram> {
        self.enabled.then(|| self.db_wait.clone())
    }

    /// The recorder of HTTP requests, for the router (`None` when off: no layer at all).
    pub fn http_layer(self: &std::sync::Arc<Self>) -> Option<HttpLayer> {
        self.enabled
            .then(|| HttpLayer::new(std::sync::Arc::clone(self)))
    }

    /// The scrape: sets the gauges read at scrape time, then encodes the registry.
    pub fn render(&self, sessions_active: i64) -> Result<String, std::fmt::Error> {
        self.sessions_active.set(sessions_active);
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_from_the_start_and_counts_only_when_enabled()
    -> Result<(), std::fmt::Error> {
        let on = Metrics::new(true);
        on.sign_in(SignInMethod::Password, SignInOutcome::WrongCredentials);
        on.rate_limited(Action::SecondFactor);
        on.forward_auth(ForwardAuth::Deny);
        let text = on.render(3)?;
        for line in [
            "hallpass_sign_ins_total{method=\"password\",outcome=\"wrong_credentials\"} 1",
            "hallpass_sign_ins_total{method=\"oidc\",outcome=\"success\"} 0",
            "hallpass_rate_limit_refusals_total{action=\"second_factor\"} 1",
            "hallpass_forward_auth_decisions_total{decision=\"deny\"} 1",
            "hallpass_sessions_active 3",
            "hallpass_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        let off = Metrics::new(false);
        off.sign_in(SignInMethod::Password, SignInOutcome::Success);
        let text = off.render(0)?;
        assert!(
            text.contains("hallpass_sign_ins_total{method=\"password\",outcome=\"success\"} 0"),
            "{text}"
        );
        assert!(off.password_hash_histogram().is_none());
        Ok(())
    }

    /// docs/grafana-dashboard.json is valid JSON and every metric it queries exists.
    #[test]
    fn the_grafana_dashboard_names_only_metrics_that_exist()
    -> Result<(), Box<dyn std::error::Error>> {
        let raw = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/grafana-dashboard.json"
        ))?;
        let json: serde_json::Value = serde_json::from_str(&raw)?;
        let metrics = Metrics::new(true);
        // The HTTP families are written from their first request on.
        let start = std::time::Instant::now();
        metrics.http.record("GET", Route::unmatched(), 404, start);
        let text = metrics.render(0)?;
        let mut exprs = Vec::new();
        collect_exprs(&json, &mut exprs);
        assert!(exprs.len() >= 8, "the dashboard has panels: {exprs:?}");
        for expr in exprs {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "no hallpass_ metric in {expr}");
            for name in names {
                // Declared by a `# TYPE` line (series with labels appear with their first
                // value), directly or as a histogram's `_bucket`, `_count` or `_sum`.
                let base = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                assert!(
                    text.lines()
                        .any(|l| l.starts_with(&format!("# TYPE {name} "))
                            || l == format!("# TYPE {base} histogram")),
                    "{name} (in {expr}) is not a metric of /metrics"
                );
            }
        }
        Ok(())
    }

    fn collect_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                        _ => collect_exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
            _ => {}
        }
    }

    fn metric_names(expr: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = expr;
        while let Some(at) = rest.find("hallpass_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
        names
    }
}
