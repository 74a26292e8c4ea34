//! What a scrape of `/metrics` reads from the database: the gauges counted at scrape time.

use super::ServiceError;
use crate::db::{DbPool, session_rows};

/// Signed-in sessions that have not expired (see `session_rows::count_signed_in`): one
/// count query per scrape, none per request.
pub async fn active_sessions(db: &DbPool) -> Result<i64, ServiceError> {
    Ok(db.run(session_rows::count_signed_in).await?)
}
