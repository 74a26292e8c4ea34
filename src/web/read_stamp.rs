//! The database's stamp for a page that only reads ([`ReadStamp`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::service::stamped::Taken;
use crate::state::AppState;

/// The stamp the session check of this request was made under, left in the request by
/// `identity` when the session came from the cache.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionStamp(pub Taken);

/// The stamp a handler that **writes nothing** reads its kept values under: the one the
/// session check took at the start of the request, else a new one. On PostgreSQL every stamp
/// is a fence round trip on the listening connection, so the user table took two a request
/// (the session, then the page) where one covers both: nothing the request did happened in
/// between, and a stamp taken earlier only ever makes a kept value look older, never newer.
/// A handler that writes first takes its own after the write ([`Taken::now`]), or its page
/// would be read under a stamp from before its own change.
#[derive(Debug, Clone, Copy)]
pub struct ReadStamp(pub Taken);

impl FromRequestParts<AppState> for ReadStamp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(match parts.extensions.get::<SessionStamp>() {
            Some(taken) => Self(taken.0),
            None => Self(Taken::now(&state.db).await),
        })
    }
}
