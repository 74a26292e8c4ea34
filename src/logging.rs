//! The log filter, shared by `serve` and the tests that read the log.

use tracing_subscriber::EnvFilter;

/// tower-sessions warns of "possibly suspicious activity" for every cookie naming a session
/// that is gone or malformed. That is the normal fate of a purged or expired session, and a
/// client repeating one stale cookie could write hundreds of megabytes of warnings; Hallpass
/// answers such requests as anonymous, clears the cookie and counts them itself
/// (`db::sessions`: a debug line each, one summary a minute).
const QUIET: &str = "tower_sessions_core::session=error,tower_sessions::service=error";

/// `RUST_LOG` when set, else `level`, else `info`; plus the directives in [`QUIET`].
pub fn filter(level: &str) -> EnvFilter {
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| level.to_owned());
    EnvFilter::try_new(format!("{base},{QUIET}"))
        .or_else(|_| EnvFilter::try_new(format!("info,{QUIET}")))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}
