//! Every way Hallpass says "no" to a well-formed request, as one typed list.
//!
//! A refusal is not a failure: nothing broke, a rule answered. Each has its own variant so a
//! page can say what happened and a front end can branch on it without matching text. The
//! web edge maps each variant to one HTTP status and one API code (`web::error::answer`), so
//! the HTML page and the JSON answer always agree. Invalid *input* is not here: it is
//! `FieldErrors`, keyed by the field to re-render.

use super::invite::InviteState;
use super::policy::PolicyError;

/// The kind of record a lookup did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Account,
    ApiKey,
    Provider,
    Identity,
    /// An app rule (`/admin/apps`).
    App,
    Group,
    /// A second factor (the account has none, or no enrolment in progress).
    SecondFactor,
    /// A passkey of the account named (removed already, or someone else's).
    Passkey,
    /// A session of the account named (ended already, or someone else's).
    Session,
    /// A brute-force counter at its limit (lifted already, or its window closed).
    Lockout,
    /// A route that is switched off (self-registration while it is closed).
    Endpoint,
    /// An invite link whose token matches no invite (mistyped, cut short), or an invite id.
    Invite,
}

/// What "Revert to previous" found nothing to go back to for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revertible {
    ProxyPreset,
    Provider,
}

/// A rule refused the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // Who is calling.
    /// No identity on a route that needs one.
    #[error("Sign in first.")]
    Unauthenticated,
    /// Unknown account, wrong password or an account that may not sign in: one answer for all.
    #[error("Invalid username or password.")]
    InvalidCredentials,
    /// A bearer key that is unknown, revoked, expired, or whose owner may not sign in.
    #[error(
        "This API key is not valid: it is unknown, revoked or expired, or its owner may not sign in."
    )]
    InvalidApiKey,
    /// A second-factor code that is wrong, of another time, or used already.
    #[error("That code is not valid. Enter the current code from your app, or a recovery code.")]
    InvalidSecondFactor,
    /// A passkey answer that does not verify: unknown credential, wrong signature, no user
    /// verification, a counter that went backwards (a cloned authenticator), an expired or
    /// replayed challenge, or an account that may not sign in.
    #[error("That passkey was not accepted. Try again, or sign in with your password.")]
    InvalidPasskey,
    /// A scrape of `GET /metrics` whose `Authorization` is not `Bearer <metrics.token>`.
    #[error("Send the metrics token as Authorization: Bearer <token>.")]
    InvalidMetricsToken,
    /// Passkeys cannot work with this instance's `server.public_url` (the reason).
    #[error("{0}")]
    PasskeysUnavailable(String),
    /// A forward-auth proxy vouched for the caller, but this instance asks for its own second
    /// factor after proxy sign-ins and this browser has not given it yet.
    #[error(
        "Your proxy signed you in, and this server asks for its own second factor too: finish signing in at /login/two-factor in your browser."
    )]
    SecondStepRequired,
    /// The password was right but the account must set up a second factor first, which the
    /// JSON API cannot do.
    #[error(
        "This account must set up a second factor before it can sign in: sign in once in a browser to set it up."
    )]
    SecondFactorEnrolmentRequired,
    /// Enrolment was asked for while a second factor is on already.
    #[error("A second factor is set up already: remove it first to set up a new one.")]
    SecondFactorEnabled,
    /// The instance requires a second factor of this account: it cannot be removed by its owner.
    #[error(
        "Your administrator requires a second factor for your account: it cannot be turned off."
    )]
    SecondFactorRequired,
    /// Password sign-in is switched off for the instance (single sign-on only).
    #[error("Password sign-in is turned off here: sign in with single sign-on.")]
    LocalLoginDisabled,
    #[error("Your account is waiting for an administrator's approval.")]
    AccountPending,
    #[error("An administrator did not approve this account.")]
    AccountRejected,
    #[error("Only administrators may do this.")]
    AdminOnly,
    /// A viewer's API key tried to change something.
    #[error("A viewer's API key is read-only.")]
    ReadOnlyKey,
    /// A state-changing request without this browser's CSRF token.
    #[error(
        "This form has expired or did not come from Hallpass. Go back, reload the page and try again."
    )]
    CsrfTokenInvalid,
    /// A browser's `Sec-Fetch-Site`/`Origin` says another site sent this request.
    #[error("Cross-site request refused.")]
    CrossSiteRequest,

    // The instance's state.
    /// The first admin exists already.
    #[error("Hallpass is already set up.")]
    AlreadySetUp,
    /// No user yet: only the setup wizard answers.
    #[error("Hallpass has no users yet: open /setup in a browser to create the first admin.")]
    SetupRequired,
    #[error("{}", missing_message(*.0))]
    NotFound(Missing),
    /// The break-glass admin (`HALLPASS_ADMIN_KEY`) has no database account.
    #[error(
        "The break-glass admin's password is HALLPASS_ADMIN_KEY: change the variable and restart to rotate it."
    )]
    BreakGlassPassword,
    #[error("The break-glass admin cannot own API keys: create a regular admin for automation.")]
    BreakGlassApiKeys,
    #[error("The break-glass admin has no database account to link identities to.")]
    BreakGlassIdentities,
    #[error(
        "The break-glass admin never uses a second factor: HALLPASS_ADMIN_KEY alone is the way back in when second factors are lost. Create a regular admin account for everyday use."
    )]
    BreakGlassSecondFactor,
    #[error("{}", nothing_to_revert(*.0))]
    NothingToRevert(Revertible),

    // Single sign-on.
    /// A provider from `HALLPASS_OIDC_PROVIDERS` (its id, when one was given to change).
    #[error("{}", read_only(.0.as_deref()))]
    ProviderReadOnly(Option<String>),
    /// A provider with this id exists already (the id).
    #[error("A provider with the id \"{0}\" exists already.")]
    ProviderIdTaken(String),
    /// Removing this would leave an account (or the instance) with no way to sign in.
    #[error("{0}")]
    LastSignInMethod(String),
    /// The identity is linked to this account already (the owner's username).
    #[error("This identity is already linked to {0}.")]
    AlreadyLinked(String),
    /// The identity belongs to another account (its username).
    #[error("This identity is already linked to another account ({0}): unlink it there first.")]
    IdentityTaken(String),

    // Apps.
    /// An app from `[[apps]]` in the configuration file (its name): read-only in the UI.
    #[error(
        "“{0}” is declared in the configuration file ([[apps]]) and is read-only here: change it in the file and restart Hallpass."
    )]
    AppReadOnly(String),

    // User administration.
    #[error(transparent)]
    Policy(#[from] PolicyError),

    // Groups.
    /// Another group has this name in some case (the name as typed).
    #[error("A group named \"{0}\" already exists (names are compared without case).")]
    GroupNameTaken(String),
    /// The account (its username) is a member of the group already.
    #[error("{0} is already a member of this group.")]
    AlreadyMember(String),
    /// The account (its username) is soft-deleted: it cannot join a group.
    #[error("{0} is a deleted account: restore it before adding it to a group.")]
    AccountDeleted(String),

    // Invites.
    /// Someone opened or submitted an invite link that can no longer be used.
    #[error("{}", invite_closed(*.0))]
    InviteClosed(InviteState),
    /// An admin tried to revoke an invite that is used or revoked already.
    #[error("{}", invite_not_open(*.0))]
    InviteNotOpen(InviteState),
}

fn invite_closed(s: InviteState) -> &'static str {
    match s {
        InviteState::Used => {
            "This invite link has been used already: each link makes one account. Sign in, or ask for a new invite."
        }
        InviteState::Expired => "This invite link has expired: ask for a new one.",
        InviteState::Revoked => "This invite link was revoked: ask for a new one.",
        InviteState::Open => "This invite link cannot be used.",
    }
}

fn invite_not_open(s: InviteState) -> &'static str {
    match s {
        InviteState::Used => "This invite was used already: there is nothing to revoke.",
        _ => "This invite is revoked already.",
    }
}

fn missing_message(m: Missing) -> &'static str {
    match m {
        Missing::Account => "No such account.",
        Missing::ApiKey => "No such API key.",
        Missing::Provider => "No such sign-in provider.",
        Missing::Identity => "No such linked identity.",
        Missing::App => "No such app.",
        Missing::Group => "No such group.",
        Missing::Session => "No such session: it has ended already.",
        Missing::Lockout => "No such lockout: it was lifted or its window has closed.",
        Missing::Endpoint => "No such endpoint.",
        Missing::SecondFactor => "This account has no second factor (or no set-up in progress).",
        Missing::Passkey => "No such passkey.",
        Missing::Invite => {
            "This invite link is not valid: check that you copied all of it, or ask for a new one."
        }
    }
}

fn nothing_to_revert(r: Revertible) -> &'static str {
    match r {
        Revertible::ProxyPreset => "There is no previous header preset to go back to.",
        Revertible::Provider => "There is no previous version of this provider to go back to.",
    }
}

fn read_only(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(
            "\"{id}\" is defined in the environment (HALLPASS_OIDC_PROVIDERS) and cannot be changed here."
        ),
        None => "This provider is defined in the environment; remove it there.".to_owned(),
    }
}
