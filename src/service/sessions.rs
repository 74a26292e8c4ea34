//! The session store and what the session layer may know of it. The store is the database
//! one (`db::sessions`); the web layer builds its session layer from [`store`] and never
//! names the database module.

use crate::db::DbPool;
pub use crate::db::sessions::{DbSessionStore as Store, USER_ID_KEY};
use crate::domain::User;

/// The tower-sessions store over the application's database.
pub fn store(db: &DbPool) -> Store {
    Store::new(db.clone())
}

/// Runs `f` — the identity check — so that the session load inside it hands over the user
/// row it read in the same query; [`loaded_user`] inside `f` takes it.
pub async fn capturing_user<F: std::future::Future>(f: F) -> F::Output {
    crate::db::sessions::capturing_user(f).await
}

/// The user row the session load inside [`capturing_user`] brought along (taken once).
/// `None` when the session names no user row, or outside that scope.
pub fn loaded_user() -> Option<User> {
    crate::db::sessions::take_loaded_user()
}
