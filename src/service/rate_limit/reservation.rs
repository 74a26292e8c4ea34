//! An attempt in flight: settled with its verdict when the work ends, or, if the request is
//! abandoned, by being dropped.

use std::time::Instant;

use super::Verdict;
use super::counters::{Counters, Ticket};

/// An attempt in flight. Settled with its verdict when the work ends; if the work is
/// abandoned instead (the request's future dropped: the client hung up), dropping this
/// settles it as `on_drop`, so no reservation outlives its request.
pub(super) struct Reservation<'a> {
    pub(super) counters: &'a Counters,
    pub(super) ticket: Option<Ticket>,
    pub(super) on_drop: Verdict,
}

impl Reservation<'_> {
    pub(super) fn settle(mut self, verdict: Verdict) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.settle(&ticket, verdict, Instant::now());
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.counters.settle(&ticket, self.on_drop, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, ip, login};
    use super::*;
    use crate::service::rate_limit::{Action, Attempt, MAX_ENTRIES};

    #[test]
    fn an_abandoned_attempt_gives_its_place_back() {
        let c = Counters::new(&config(1, 1), MAX_ENTRIES);
        let t = Instant::now();
        for _ in 0..5 {
            let ticket = c.begin(&login("10.0.0.1", "alice"), t).ok();
            assert!(ticket.is_some(), "the previous attempt was handed back");
            drop(Reservation {
                counters: &c,
                ticket,
                on_drop: Action::Login.cancelled(),
            });
        }
        assert_eq!(c.len(), 0);
        // Linking's cost is its start: abandoning it still counts.
        let a = Attempt::new(Action::SsoLink, ip("10.0.0.1"), None);
        drop(Reservation {
            counters: &c,
            ticket: c.begin(&a, t).ok(),
            on_drop: Action::SsoLink.cancelled(),
        });
        assert!(c.begin(&a, t).is_err());
    }
}
