//! `GET /invite/{token}`: the sign-up page an invite link opens (its hints filled in), and
//! `POST /invite/{token}`: the account made from it, signed in and sent to `/` — an active
//! account lands home, a pending one sees the "Awaiting approval" page, as after
//! `/register`. A link that is unknown (404), used, expired or revoked (410) gets a page that
//! says which, with no form. The same page offers the passkey way (`passkey`) when
//! `server.public_url` allows passkeys and the browser runs the script.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::domain::FieldErrors;
use crate::domain::invite::Invite;
use crate::service::accounts::Registration;
use crate::service::{Missing, Refusal, ServiceError, invites, passkeys};
use crate::state::AppState;
use crate::web::client::{Client, Device};
use crate::web::error::UiError;
use crate::web::identity::{CurrentUser, MaybeUser};
use crate::web::session;
use crate::web::ui::Layout;

#[derive(Template, WebTemplate)]
#[template(path = "invite.html")]
pub struct SignUpPage {
    layout: Layout,
    token: String,
    role: &'static str,
    groups: Vec<String>,
    needs_approval: bool,
    /// Someone is signed in in this browser: no form, a note to sign out first.
    signed_in_as: Option<String>,
    username: String,
    email: String,
    /// The passkey's name, as typed.
    passkey_name: String,
    /// Why this page cannot offer a passkey (`server.public_url`), if it cannot.
    passkeys_unavailable: Option<String>,
    errors: FieldErrors,
}

impl SignUpPage {
    async fn new(
        state: &AppState,
        session: &Session,
        token: String,
        invite: &Invite,
        user: Option<&CurrentUser>,
    ) -> Result<Self, UiError> {
        Ok(Self {
            layout: Layout::new("You are invited", state, session, user).await?,
            token,
            role: invite.role.as_str(),
            groups: invite.groups.iter().map(|g| g.name.clone()).collect(),
            needs_approval: invite.needs_approval,
            signed_in_as: user.map(|u| u.user.username.clone()),
            username: invite.username.clone().unwrap_or_default(),
            email: invite.email.clone().unwrap_or_default(),
            passkey_name: String::new(),
            passkeys_unavailable: passkeys::availability(&state.config).err(),
            errors: FieldErrors::new(),
        })
    }
}

/// The page of a link that cannot be used, saying why.
#[derive(Template, WebTemplate)]
#[template(path = "invite_closed.html")]
pub struct ClosedPage {
    layout: Layout,
    /// `unknown`, `used`, `expired` or `revoked` (the page's id, for tests and styles).
    state: &'static str,
    message: String,
}

/// The closed-link page for refusals about the link, else the error for `e`.
fn closed(e: ServiceError) -> Result<Response, UiError> {
    let state = match &e {
        ServiceError::Refused(Refusal::NotFound(Missing::Invite)) => "unknown",
        ServiceError::Refused(Refusal::InviteClosed(s)) => s.as_str(),
        _ => return Err(e.into()),
    };
    let title = match state {
        "unknown" => "Invite link not valid",
        "used" => "Invite link used already",
        "expired" => "Invite link expired",
        _ => "Invite link revoked",
    };
    let status = crate::web::error::answer(&e).0;
    let page = ClosedPage {
        layout: Layout::bare(title),
        state,
        message: e.to_string(),
    };
    Ok((status, page).into_response())
}

pub async fn page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    client: Client,
    Path(token): Path<String>,
) -> Result<Response, UiError> {
    let checked = invites::check(
        &state.db,
        &state.secret,
        &state.limiter,
        &token,
        client.ip(),
    );
    let invite = match checked.await {
        Ok(invite) => invite,
        Err(e) => return closed(e),
    };
    let page = SignUpPage::new(&state, &session, token, &invite, user.as_ref()).await?;
    Ok(page.into_response())
}

#[derive(Deserialize)]
pub struct SignUpForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn submit(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    session: Session,
    (client, device): (Client, Device),
    Path(token): Path<String>,
    Form(form): Form<SignUpForm>,
) -> Result<Response, UiError> {
    if user.is_some() {
        return Ok(signed_in_redirect(&token));
    }
    // The same fields, rules and messages as `/register` and the setup wizard.
    let parsed = Registration::parse(
        &form.username,
        &form.email,
        &form.password,
        &form.password_confirm,
    );
    let result = match parsed {
        Ok(new) => {
            let deps = (&state.db, &state.hasher, &state.secret, &state.limiter);
            invites::accept(deps, &token, new, client.ip()).await
        }
        Err(errors) => Err(ServiceError::Validation(errors)),
    };
    match result {
        Ok(user) => {
            tracing::info!(username = %user.username, status = %user.status, "signed up with an invite");
            session::sign_in(&session, &user, &state.config, &device).await?;
            Ok(Redirect::to("/").into_response())
        }
        Err(e) => {
            let typed = Typed {
                username: form.username,
                email: form.email,
                passkey_name: String::new(),
            };
            again(&state, &session, token, typed, e).await
        }
    }
}

/// Signed in already: the link stays unused rather than swap this session. Back to its page
/// (which says so) only when the token is one: it goes into a header.
pub(super) fn signed_in_redirect(token: &str) -> Response {
    let back = if invites::well_formed(token) {
        format!("/invite/{token}")
    } else {
        "/".to_owned()
    };
    Redirect::to(&back).into_response()
}

/// What the person typed, to show again (never a password).
pub(super) struct Typed {
    pub username: String,
    pub email: String,
    pub passkey_name: String,
}

/// The form again, as typed, with the messages by their fields (a refused passkey by the
/// passkey button); a link that died meanwhile gets its closed page.
pub(super) async fn again(
    state: &AppState,
    session: &Session,
    token: String,
    form: Typed,
    e: ServiceError,
) -> Result<Response, UiError> {
    let errors = match &e {
        ServiceError::Validation(errors) => errors.clone(),
        ServiceError::RateLimited(l) => FieldErrors::single("username", l.to_string()),
        ServiceError::Refused(Refusal::InvalidPasskey) => FieldErrors::single(
            "passkey",
            "That passkey was not accepted. Try again, or create the account with a password.",
        ),
        ServiceError::Refused(r @ Refusal::PasskeysUnavailable(_)) => {
            FieldErrors::single("passkey", r.to_string())
        }
        _ => return closed(e),
    };
    // Validation comes before the link is checked (the parse is at the edge): look it up
    // for the page, and answer a dead link with its own page.
    let invite = match invites::get_open(&state.db, &state.secret, &token).await {
        Ok(invite) => invite,
        Err(dead) => return closed(dead),
    };
    let mut page = SignUpPage::new(state, session, token, &invite, None).await?;
    (page.username, page.email, page.errors) = (form.username, form.email, errors);
    page.passkey_name = form.passkey_name;
    let response = (crate::web::error::answer(&e).0, page).into_response();
    Ok(match e {
        ServiceError::RateLimited(l) => crate::web::error::with_retry_after(l, response),
        _ => response,
    })
}
