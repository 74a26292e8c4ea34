//! The checks every application request passes once its caller is known, in order: the
//! setup gate (no admin yet: the wizard) → the status gate (pending, rejected, read-only
//! keys) → the CSRF check (which checks the body's text last) → the handler.
//!
//! Plain functions called in a row, not layers: an axum layer costs every request a clone of
//! the boxed service under it and a boxed future (about 2,500 instructions each, counted by
//! bench/instructions.sh), and these three used to be layers of their own.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tower_sessions::Session;

use crate::state::AppState;

/// The gates, then the handler (`next`); the first gate that refuses answers instead.
pub async fn then_handler(
    state: &AppState,
    session: &Session,
    req: Request,
    next: Next,
) -> Response {
    let passed = async {
        let req = super::setup_gate::check(state, req).await?;
        let req = super::guards::status_check(session, req).await?;
        super::csrf::check(state, session, req).await
    };
    match passed.await {
        Ok(req) => {
            // An error page keeps the signed-in person's navigation (see `ui::errors`).
            let caller = super::ui::errors::caller_of_page(&req);
            let response = next.run(req).await;
            super::ui::errors::with_navigation(state, session, caller, response).await
        }
        Err(refused) => refused,
    }
}
