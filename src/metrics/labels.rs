//! The fixed words metrics are labelled with. Each enum's order is the index of its
//! pre-created counter in [`super::Metrics`]; `ALL` lists every variant in that order.

use crate::service::{Refusal, ServiceError};

/// How someone signed in (`method` of `hallpass_sign_ins_total`). API keys are not here: a
/// key is presented on every request rather than signed in with; its failures show as
/// `hallpass_rate_limit_refusals_total{action="api_key"}` once they pile up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// The sign-in form or `POST /api/auth/login` (the break-glass admin too).
    Password = 0,
    /// A passkey, without a password.
    Passkey = 1,
    /// An OpenID Connect provider's callback.
    Oidc = 2,
    /// A trusted reverse proxy's identity headers (`auth.proxy`).
    Proxy = 3,
}

impl SignInMethod {
    pub const ALL: [SignInMethod; 4] = [
        SignInMethod::Password,
        SignInMethod::Passkey,
        SignInMethod::Oidc,
        SignInMethod::Proxy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Passkey => "passkey",
            SignInMethod::Oidc => "oidc",
            SignInMethod::Proxy => "proxy",
        }
    }
}

/// How a sign-in attempt ended (`outcome` of `hallpass_sign_ins_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Signed in: a session was opened.
    Success = 0,
    /// The first factor was right; the second step (code, passkey or enrolment) was asked.
    SecondStep = 1,
    /// Unknown account, wrong password, or a passkey that did not verify.
    WrongCredentials = 2,
    /// Refused by the brute-force limits before anything was checked.
    RateLimited = 3,
    /// Refused by a rule: the method is switched off, the account may not sign in, the
    /// provider refused or the account is not linked.
    Refused = 4,
    /// A server-side failure (database, hashing).
    Error = 5,
}

impl SignInOutcome {
    pub const ALL: [SignInOutcome; 6] = [
        SignInOutcome::Success,
        SignInOutcome::SecondStep,
        SignInOutcome::WrongCredentials,
        SignInOutcome::RateLimited,
        SignInOutcome::Refused,
        SignInOutcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SignInOutcome::Success => "success",
            SignInOutcome::SecondStep => "second_step",
            SignInOutcome::WrongCredentials => "wrong_credentials",
            SignInOutcome::RateLimited => "rate_limited",
            SignInOutcome::Refused => "refused",
            SignInOutcome::Error => "error",
        }
    }

    /// The outcome of a right first factor: signed in, or asked for the second step.
    pub fn of_next(next: &crate::service::two_factor::Next) -> Self {
        use crate::service::two_factor::Next;
        match next {
            Next::Done => SignInOutcome::Success,
            Next::Code | Next::Enrol => SignInOutcome::SecondStep,
        }
    }

    /// The outcome a failed sign-in's error stands for.
    pub fn of_error(e: &ServiceError) -> Self {
        match e {
            ServiceError::Refused(Refusal::InvalidCredentials | Refusal::InvalidPasskey) => {
                SignInOutcome::WrongCredentials
            }
            ServiceError::RateLimited(_) => SignInOutcome::RateLimited,
            ServiceError::Refused(_) | ServiceError::Validation(_) => SignInOutcome::Refused,
            ServiceError::Db(_) | ServiceError::Hash(_) | ServiceError::Internal(_) => {
                SignInOutcome::Error
            }
        }
    }
}

/// A forward-auth answer (`decision` of `hallpass_forward_auth_decisions_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardAuth {
    /// 200: the request may pass.
    Allow = 0,
    /// A redirect (or 401) to the sign-in page: nobody is signed in.
    SignIn = 1,
    /// 403: signed in, but the app's rule does not let this account in.
    Deny = 2,
    /// 400: the proxy did not send the headers that name the original request.
    BadRequest = 3,
    /// A server-side failure.
    Error = 4,
}

impl ForwardAuth {
    pub const ALL: [ForwardAuth; 5] = [
        ForwardAuth::Allow,
        ForwardAuth::SignIn,
        ForwardAuth::Deny,
        ForwardAuth::BadRequest,
        ForwardAuth::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ForwardAuth::Allow => "allow",
            ForwardAuth::SignIn => "sign_in",
            ForwardAuth::Deny => "deny",
            ForwardAuth::BadRequest => "bad_request",
            ForwardAuth::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arrays in `Metrics` are indexed by `as usize`: the order of `ALL` must match.
    #[test]
    fn all_lists_each_variant_at_its_index() {
        for (i, m) in SignInMethod::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
        }
        for (i, o) in SignInOutcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
        }
        for (i, d) in ForwardAuth::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}
