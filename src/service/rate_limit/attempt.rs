//! What is attempted (`Action`, `Attempt`), how its outcome counts (`Verdict`), and the
//! refusal it may get (`Limited`).

use crate::domain::audit::AuditAction;
use std::net::IpAddr;

use crate::service::{Actor, Missing, Refusal, ServiceError};

/// What is being attempted. Each action has its own counters, so that, say, a script with
/// a revoked API key does not lock its owner out of the sign-in page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Password sign-in (`POST /login`, `POST /api/auth/login`).
    Login,
    /// Self-registration (`POST /register`) and invite links (opening one, signing up with
    /// it): an invite token that matches nothing is a failure.
    Register,
    /// Changing one's own password (`POST /account/password`, `POST /api/me/password`).
    PasswordChange,
    /// Starting Verify & Link (account page and admin SSO page).
    SsoLink,
    /// Presenting an `Authorization: Bearer` API key.
    ApiKey,
    /// Submitting the setup wizard's one-time code (`POST /setup`).
    Setup,
    /// A second-factor code after a correct password (`POST /login/two-factor`, `POST
    /// /api/auth/login/second-factor`). Its own counters, cleared only by a right code: a
    /// correct password (which clears the login counter) must not buy more code guesses.
    SecondFactor,
    /// Presenting a bearer token to `GET /metrics` (`metrics.token`). Its own counters: a
    /// misconfigured Prometheus must not lock its host out of API keys or sign-in, nor a
    /// flood of bad API keys out of the scrape.
    MetricsToken,
}

impl Action {
    /// Whether an attempt holds a place in its counters while it runs (see `rate_limit`'s
    /// module docs). A key lookup and a token comparison are cheap: only real failures
    /// count, so requests in flight never refuse a caller with the right secret.
    pub(super) fn reserves(self) -> bool {
        !matches!(self, Action::ApiKey | Action::MetricsToken)
    }

    /// The action's name in the shared counters (PostgreSQL) and the lockout view.
    pub fn name(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Register => "register",
            Action::PasswordChange => "password_change",
            Action::SsoLink => "sso_link",
            Action::ApiKey => "api_key",
            Action::Setup => "setup",
            Action::SecondFactor => "second_factor",
            Action::MetricsToken => "metrics_token",
        }
    }

    /// Every action (the unit test makes a new one join this list).
    pub const ALL: [Action; 8] = [
        Action::Login,
        Action::Register,
        Action::PasswordChange,
        Action::SsoLink,
        Action::ApiKey,
        Action::Setup,
        Action::SecondFactor,
        Action::MetricsToken,
    ];

    /// The action a stored or shown name stands for (see [`Action::name`]). Lockout ids and
    /// the shared counters' rows name their action: one missing here could be neither shown
    /// nor lifted (second-factor lockouts were, until the third session on issue 12).
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the attempt counts as a failure as soon as it starts (its start is the cost,
    /// see [`Action::verdict`]); the shared counters then count it before the work runs, so
    /// a request abandoned half-way is counted in every process too.
    pub(super) fn counts_at_start(self) -> bool {
        matches!(self, Action::SsoLink)
    }

    /// How an attempt abandoned half-way (its future dropped) counts.
    pub(super) fn cancelled(self) -> Verdict {
        match self {
            // The trip to the provider has started: that is the cost being limited.
            Action::SsoLink => Verdict::Failed,
            _ => Verdict::Uncounted,
        }
    }

    /// The audit log's name for a refused attempt.
    pub fn audit_action(self) -> AuditAction {
        match self {
            Action::Login => AuditAction::RateLimitLogin,
            Action::Register => AuditAction::RateLimitRegister,
            Action::PasswordChange => AuditAction::RateLimitPasswordChange,
            Action::SsoLink => AuditAction::RateLimitSsoLink,
            Action::ApiKey => AuditAction::RateLimitApiKey,
            Action::Setup => AuditAction::RateLimitSetup,
            Action::SecondFactor => AuditAction::RateLimitSecondFactor,
            Action::MetricsToken => AuditAction::RateLimitMetricsToken,
        }
    }

    /// How a finished attempt counts. The rule for every front end lives here.
    pub(super) fn verdict<T>(self, result: &Result<T, ServiceError>) -> Verdict {
        match (self, result) {
            // The start is what costs: every one counts, however it ends.
            (Action::SsoLink, _) => Verdict::Failed,
            (_, Ok(_)) => Verdict::Succeeded,
            (
                _,
                Err(ServiceError::Refused(
                    Refusal::InvalidCredentials
                    | Refusal::InvalidApiKey
                    | Refusal::InvalidSecondFactor
                    | Refusal::InvalidPasskey
                    | Refusal::InvalidMetricsToken,
                )),
            ) => Verdict::Failed,
            // A wrong current password, not a new one that breaks the rules.
            (Action::PasswordChange, Err(ServiceError::Validation(f))) => {
                if f.get("current_password").is_some() {
                    Verdict::Failed
                } else {
                    Verdict::Uncounted
                }
            }
            // A wrong setup code (not a username or password that breaks the rules).
            (Action::Setup, Err(ServiceError::Validation(f))) => {
                if f.get("setup_code").is_some() {
                    Verdict::Failed
                } else {
                    Verdict::Uncounted
                }
            }
            // An invite token that matches no invite: a guess at a link.
            (Action::Register, Err(ServiceError::Refused(Refusal::NotFound(Missing::Invite)))) => {
                Verdict::Failed
            }
            // The input parsed (the handler checks first), so this is a taken username or
            // email: a probe for existing accounts, and a hash spent.
            (Action::Register, Err(ServiceError::Validation(_))) => Verdict::Failed,
            _ => Verdict::Uncounted,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Succeeded,
    Failed,
    Uncounted,
}

/// A refused attempt: answer `429 Too Many Requests` with `Retry-After: retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until the counter that refused the attempt forgets its failures (at least 1).
    pub retry_after: u64,
}

impl std::fmt::Display for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.retry_after;
        let wait = match s {
            0..=1 => "1 second".to_owned(),
            2..=90 => format!("{s} seconds"),
            _ => format!("{} minutes", s.div_ceil(60)),
        };
        write!(f, "Too many failed attempts. Try again in {wait}.")
    }
}

/// One attempt to guard: what, from where, for which account, by whom (for the audit log).
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub(super) action: Action,
    pub(super) ip: IpAddr,
    pub(super) account: Option<&'a str>,
    pub(super) actor: Actor,
}

impl<'a> Attempt<'a> {
    /// An anonymous attempt from client address `ip`, naming `account` (compared
    /// case-insensitively) when there is one.
    pub fn new(action: Action, ip: IpAddr, account: Option<&'a str>) -> Self {
        Self {
            action,
            ip,
            account,
            actor: Actor::anonymous(Some(ip.to_string())),
        }
    }

    /// The attempt is made by a signed-in user; the audit log names them.
    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FieldErrors;

    #[test]
    fn every_action_is_found_by_its_name() {
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(a), "{a:?}");
        }
        assert_eq!(
            Action::from_name("second_factor"),
            Some(Action::SecondFactor)
        );
        assert_eq!(Action::from_name("nonsense"), None);
        // A new action stops this match from compiling until it joins `Action::ALL`.
        let listed = |a: Action| match a {
            Action::Login
            | Action::Register
            | Action::PasswordChange
            | Action::SsoLink
            | Action::ApiKey
            | Action::Setup
            | Action::SecondFactor
            | Action::MetricsToken => Action::ALL.contains(&a),
        };
        assert!(Action::ALL.into_iter().all(listed));
    }

    #[test]
    fn verdicts() {
        let bad_current = FieldErrors::single("current_password", "wrong");
        let short_new = FieldErrors::single("new_password", "too short");
        let pc = Action::PasswordChange;
        assert_eq!(
            pc.verdict::<()>(&Err(ServiceError::Validation(bad_current))),
            Verdict::Failed
        );
        assert_eq!(
            pc.verdict::<()>(&Err(ServiceError::Validation(short_new))),
            Verdict::Uncounted
        );
        assert_eq!(
            Action::Login.verdict::<()>(&Err(ServiceError::Refused(Refusal::LocalLoginDisabled))),
            Verdict::Uncounted
        );
        assert_eq!(Action::Login.verdict(&Ok(())), Verdict::Succeeded);
        assert_eq!(Action::SsoLink.verdict(&Ok(())), Verdict::Failed);
        let mt = Action::MetricsToken;
        assert_eq!(
            mt.verdict::<()>(&Err(ServiceError::Refused(Refusal::InvalidMetricsToken))),
            Verdict::Failed
        );
        assert_eq!(mt.verdict(&Ok(())), Verdict::Succeeded);
        assert!(!mt.reserves(), "a compare is cheap: only failures count");
    }

    #[test]
    fn the_message_says_when_to_come_back() {
        assert_eq!(
            Limited { retry_after: 840 }.to_string(),
            "Too many failed attempts. Try again in 14 minutes."
        );
        assert_eq!(
            Limited { retry_after: 2 }.to_string(),
            "Too many failed attempts. Try again in 2 seconds."
        );
    }
}
