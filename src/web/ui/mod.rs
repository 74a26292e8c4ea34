//! HTML pages: one module per screen, each with its askama struct beside its handlers.

pub mod account;
pub mod admin_users;
pub mod apps;
pub mod audit;
mod csrf_slot;
pub mod errors;
mod escaped;
pub mod groups;
pub mod home;
pub mod invites;
pub mod lockouts;
pub mod login;
pub mod passkeys;
pub mod proxy;
pub mod register;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod two_factor;

pub use csrf_slot::{CSRF_GAP, CsrfToken};
pub use escaped::Escaped;

use axum::http::HeaderMap;
use tower_sessions::Session;

use super::identity::CurrentUser;
use super::session;
use crate::config::Config;
use crate::domain::Role;
use crate::service::stamped::Taken;
use crate::state::AppState;

/// Bumps with every release so browsers fetch new assets.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the layout template needs on every page.
pub struct Layout {
    pub title: String,
    pub user: Option<NavUser>,
    pub csrf_token: CsrfToken,
    pub asset_version: &'static str,
    /// The development bypass is on: a red banner on every page.
    pub bypass: bool,
}

pub struct NavUser {
    pub username: String,
    pub role: Role,
    /// Accounts waiting for approval (admins only).
    pub pending_count: Option<i64>,
}

impl Layout {
    /// Builds the layout; creates the session's CSRF token if it has none yet, because
    /// every page can carry a form (sign-out at least).
    pub async fn new(
        title: impl Into<String>,
        state: &AppState,
        session: &Session,
        user: Option<&CurrentUser>,
    ) -> Result<Self, super::error::UiError> {
        Self::new_at(title, state, session, user, None).await
    }

    /// [`Layout::new`] for a page that took the database's stamp already (`at`): the pending
    /// badge is read under it.
    pub async fn new_at(
        title: impl Into<String>,
        state: &AppState,
        session: &Session,
        user: Option<&CurrentUser>,
        at: Option<Taken>,
    ) -> Result<Self, super::error::UiError> {
        let pending_count = match user {
            Some(u) if u.user.role == Role::Admin => {
                let at = match at {
                    Some(at) => at,
                    None => Taken::now(&state.db).await,
                };
                let kept = &state.pending_badge;
                Some(crate::service::users::pending_count_at(&state.db, kept, at).await?)
            }
            _ => None,
        };
        Ok(Self {
            title: title.into(),
            user: user.map(|u| NavUser {
                username: u.user.username.clone(),
                role: u.user.role,
                pending_count,
            }),
            csrf_token: CsrfToken::new(session::csrf_token(session).await?),
            asset_version: ASSET_VERSION,
            bypass: state.dev_admin.is_some(),
        })
    }

    /// For pages rendered without a session (error pages from middleware).
    pub fn bare(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: None,
            csrf_token: CsrfToken::new(String::new()),
            asset_version: ASSET_VERSION,
            bypass: false,
        }
    }
}

/// Explains the classic homelab login loop: a `Secure` cookie set over plain http is
/// dropped by the browser, so signing in "works" and lands back on the sign-in page.
pub fn cookie_warning(config: &Config, headers: &HeaderMap) -> Option<String> {
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|| "http".to_owned());
    let public = config.server.public_url.as_ref();
    let warning = cookie_problem(config, &scheme, public);
    if let Some(w) = &warning {
        // The operator reads the log, the person stuck in the loop reads the page.
        tracing::warn!("sign-in page served where the session cookie will not stick: {w}");
    }
    warning
}

fn cookie_problem(
    config: &Config,
    scheme: &str,
    public: Option<&crate::config::PublicUrl>,
) -> Option<String> {
    if config.cookie_secure() && scheme == "http" {
        return Some(format!(
            "This page was loaded over http://, but the session cookie is marked Secure{}. Your browser will drop it and you will land back here after signing in. Open Hallpass over https://{}, or set session.cookie_secure = \"never\" for a plain-http setup.",
            public.map_or(String::new(), |p| format!(
                " because server.public_url is {}",
                p.as_str()
            )),
            public.map_or(String::new(), |p| format!(" ({})", p.as_str())),
        ));
    }
    if scheme == "https" && public.is_some_and(|p| !p.is_https()) {
        return Some(format!(
            "This page was loaded over https://, but server.public_url is {}. Links and redirects will point to plain http; set server.public_url to the https address.",
            public.map_or("", |p| p.as_str())
        ));
    }
    None
}

/// A user as the pages show them.
pub struct UserView {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub status: crate::domain::Status,
    pub auth_method: &'static str,
    pub created: String,
    pub last_login: String,
}

impl From<&CurrentUser> for UserView {
    fn from(c: &CurrentUser) -> Self {
        let u = &c.user;
        Self {
            username: u.username.clone(),
            display_name: u.display().to_owned(),
            email: u.email.clone().unwrap_or_default(),
            role: u.role,
            status: u.status,
            auth_method: match c.auth_method {
                super::identity::AuthMethod::Session => "password (browser session)",
                super::identity::AuthMethod::Oidc => "single sign-on (browser session)",
                super::identity::AuthMethod::ApiKey => "API key",
                super::identity::AuthMethod::Proxy => "forward-auth proxy",
                super::identity::AuthMethod::Bypass => "development bypass (HALLPASS_AUTH_BYPASS)",
            },
            created: format_time(u.created_at),
            last_login: u
                .last_login_at
                .map_or_else(|| "never".to_owned(), format_time),
        }
    }
}

/// `2026-11-24 13:05 UTC`.
pub fn format_time(ts: i64) -> String {
    write_time(ts, false)
}

/// `2026-11-24 13:05:09 UTC`, where seconds matter (the audit log).
pub fn format_time_seconds(ts: i64) -> String {
    write_time(ts, true)
}

/// Digit by digit: the user table shows two times on each of its 50 rows, and the `time`
/// crate's general formatter cost 15 % of that page's instructions. Years outside
/// 0000–9999 (never a real sign-in) take the general path.
fn write_time(ts: i64, seconds: bool) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ts) else {
        return ts.to_string();
    };
    let Ok(year) = u16::try_from(t.year()) else {
        return general_time(ts, seconds);
    };
    if year > 9999 {
        return general_time(ts, seconds);
    }
    let mut out = String::with_capacity(23);
    let two = |out: &mut String, n: u8| {
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    };
    two(&mut out, u8::try_from(year / 100).unwrap_or(0));
    two(&mut out, u8::try_from(year % 100).unwrap_or(0));
    out.push('-');
    two(&mut out, u8::from(t.month()));
    out.push('-');
    two(&mut out, t.day());
    out.push(' ');
    two(&mut out, t.hour());
    out.push(':');
    two(&mut out, t.minute());
    if seconds {
        out.push(':');
        two(&mut out, t.second());
    }
    out.push_str(" UTC");
    out
}

fn general_time(ts: i64, seconds: bool) -> String {
    if seconds {
        format_ts(
            ts,
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
        )
    } else {
        format_ts(
            ts,
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"),
        )
    }
}

fn format_ts(ts: i64, fmt: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

#[cfg(test)]
mod time_tests {
    use super::{format_time, format_time_seconds, general_time};

    #[test]
    fn times_are_written_as_the_general_formatter_writes_them() {
        for ts in [
            0,
            1,
            59,
            86_399,
            951_782_400, // 2000-02-29
            1_700_000_000,
            1_764_414_309,
            4_102_444_799,   // 2099-12-31 23:59:59
            253_402_300_799, // 9999-12-31 23:59:59
            -62_135_596_800, // 0001-01-01
        ] {
            assert_eq!(format_time(ts), general_time(ts, false), "{ts}");
            assert_eq!(format_time_seconds(ts), general_time(ts, true), "{ts}");
        }
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(
            format_time_seconds(1_700_000_009),
            "2023-11-14 22:13:29 UTC"
        );
    }
}
