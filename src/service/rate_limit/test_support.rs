//! Helpers shared by the unit tests of the limiter's parts.

use std::net::IpAddr;

use super::{Action, Attempt};
use crate::config::{HumanDuration, RateLimitConfig};

pub(super) fn config(account: u32, ip: u32) -> RateLimitConfig {
    RateLimitConfig {
        enabled: true,
        window: HumanDuration::secs(60),
        max_failures_per_account: account,
        max_failures_per_ip: ip,
    }
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

pub(super) fn login<'a>(from: &str, account: &'a str) -> Attempt<'a> {
    Attempt::new(Action::Login, ip(from), Some(account))
}
