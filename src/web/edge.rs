//! The first check of every routed request: which surface answers it (`surface`), then what
//! it names — the host (`host`) and the text of its address (`input`). One layer for all
//! three, because every layer costs the hot path.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::surface::Surface;
use crate::state::AppState;

/// Middleware: refuses a request for a host name this server does not answer to, or whose
/// path or query carries text no handler should see; otherwise passes it on.
pub async fn check(
    State(state): State<AppState>,
    params: Result<RawPathParams, RawPathParamsRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    let surface = Surface::of(req.uri(), req.headers());
    let api = surface.is_api();
    let mut response = if let Some(refused) = super::host::refusal(&req, api, &state.config) {
        refused
    } else if let Some(refused) = super::input::address_refusal(params, &req, api) {
        refused
    } else {
        req.extensions_mut().insert(surface.clone());
        next.run(req).await
    };
    surface.vary(&mut response);
    response
}
