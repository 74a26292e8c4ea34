//! What a scrape of `/metrics` reads from the database (the gauges counted at scrape time),
//! and who may scrape: the bearer token, checked under the brute-force limits.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::rate_limit::{Action, Attempt, RateLimiter};
use super::{Refusal, ServiceError};
use crate::config::MetricsToken;
use crate::db::{DbPool, session_rows};

/// Signed-in sessions that have not expired (see `session_rows::count_signed_in`): one
/// count query per scrape, none per request.
pub async fn active_sessions(db: &DbPool) -> Result<i64, ServiceError> {
    Ok(db.run(session_rows::count_signed_in).await?)
}

/// Whether a scrape from `ip` (already inside `metrics.allow`) that sent `authorization`
/// (the header's raw value) may read the metrics under `token` (`metrics.token`; `None`:
/// no token is asked). A wrong token is [`Refusal::InvalidMetricsToken`] and counts as a
/// failure of [`Action::MetricsToken`] from `ip`; past the limit the answer is
/// [`ServiceError::RateLimited`] and the token is not compared at all.
///
/// A request with no `Authorization` header is refused the same way but neither counted
/// nor checked against the limit: it guesses nothing, so counting it would protect nothing,
/// and a Prometheus that briefly lost its token file (or a curl probe from the same host)
/// would use up the address's budget and then have to wait out the window once fixed.
pub async fn admit(
    limiter: &RateLimiter,
    token: Option<&MetricsToken>,
    authorization: Option<&[u8]>,
    ip: IpAddr,
) -> Result<(), ServiceError> {
    let Some(token) = token else {
        return Ok(());
    };
    let refused = || ServiceError::Refused(Refusal::InvalidMetricsToken);
    let Some(sent) = authorization else {
        return Err(refused());
    };
    let attempt = Attempt::new(Action::MetricsToken, ip, None);
    let check = async {
        if bearer_matches(sent, token.expose()) {
            Ok(())
        } else {
            Err(refused())
        }
    };
    limiter.guard(attempt, check).await
}

/// Whether an `Authorization` value is `Bearer <expected>` (scheme in any case). Both sides
/// are hashed first, so the comparison takes the same time whatever the lengths, and is
/// constant-time over the digests: a wrong guess teaches nothing about the token.
fn bearer_matches(authorization: &[u8], expected: &str) -> bool {
    let sent = std::str::from_utf8(authorization).ok().and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(sent) = sent else {
        return false;
    };
    let (a, b) = (
        Sha256::digest(sent.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let t = "0123456789abcdef";
        let m = |v: &str| bearer_matches(v.as_bytes(), t);
        assert!(m("Bearer 0123456789abcdef"));
        assert!(m("bearer 0123456789abcdef"));
        assert!(!m("Bearer 0123456789abcdeF"));
        assert!(!m("Bearer 0123456789abcde"));
        assert!(!m("Basic 0123456789abcdef"));
        assert!(!m("0123456789abcdef"));
        assert!(!m(""));
        assert!(!bearer_matches(b"Bearer \xff0123456789abcdef", t));
    }

    /// The rule end to end on one limiter (SQLite: in memory): requests without the header
    /// are not counted, wrong tokens are, and past the limit even the right token is refused
    /// without being compared.
    #[tokio::test]
    async fn wrong_tokens_count_and_a_limited_address_is_refused_before_the_compare()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = crate::db::sqlite_for_tests(dir.path(), 1)?;
        let config = crate::config::RateLimitConfig {
            enabled: true,
            window: crate::config::HumanDuration::secs(60),
            max_failures_per_account: 2,
            max_failures_per_ip: 2,
        };
        let limiter = RateLimiter::new(&config, db, [7; 32]);
        let token = MetricsToken::new("0123456789abcdef".into());
        let ip = IpAddr::from([10, 0, 0, 1]);
        let try_token =
            |sent: Option<&'static str>| admit(&limiter, Some(&token), sent.map(str::as_bytes), ip);
        let wrong = |r: &Result<(), ServiceError>| {
            matches!(r, Err(ServiceError::Refused(Refusal::InvalidMetricsToken)))
        };
        for _ in 0..3 {
            assert!(wrong(&try_token(None).await), "refused, not counted");
        }
        assert!(try_token(Some("Bearer 0123456789abcdef")).await.is_ok());
        for _ in 0..2 {
            assert!(wrong(&try_token(Some("Bearer nope")).await));
        }
        let limited = try_token(Some("Bearer 0123456789abcdef")).await;
        assert!(
            matches!(limited, Err(ServiceError::RateLimited(_))),
            "{limited:?}"
        );
        // Another address is untouched.
        let right: Option<&[u8]> = Some(b"Bearer 0123456789abcdef");
        let other = admit(&limiter, Some(&token), right, IpAddr::from([10, 0, 0, 2])).await;
        assert!(other.is_ok(), "{other:?}");
        Ok(())
    }
}
