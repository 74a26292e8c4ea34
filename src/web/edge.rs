//! The first check of every routed request: what it names — the host (`host`) and the
//! text of its address (`input`). One layer for both, because every layer costs the hot path.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// Middleware: refuses a request for a host name this server does not answer to, or whose
/// path or query carries text no handler should see; otherwise passes it on.
pub async fn check(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(refused) = super::host::refusal(&req, &state.config) {
        return refused;
    }
    if let Some(refused) = super::input::address_refusal(params, &req) {
        return refused;
    }
    next.run(req).await
}
