//! Reads about accounts that both front ends show: the admin user table, one account, the
//! pending count of the navigation badge, and whether any account exists yet. The HTML
//! page and the JSON API call these, so they assemble the same data in one place.

use super::ServiceError;
use crate::db::{self, DbPool};
use crate::domain::user_list::PAGE_SIZE;
use crate::domain::{ListQuery, User};

/// One row of the user table: the account and how it can sign in besides a password.
#[derive(Debug, Clone)]
pub struct ListedUser {
    pub user: User,
    /// How many API keys the account has.
    pub api_keys: i64,
    /// Providers it has linked identities at (an OpenID provider id, or `proxy`), sorted.
    pub providers: Vec<String>,
}

/// One page of the user table.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<ListedUser>,
    /// The `after` cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// What a page of users carries besides the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// The rows only (the JSON list, which does not show sign-in methods).
    Rows,
    /// Each row's API-key count and linked providers (the admin table): two more indexed
    /// queries, so only when they are shown.
    SignInMethods,
}

/// One page of users, read on one connection. One row more than a page is fetched, to know
/// whether another page follows.
pub async fn list(db: &DbPool, query: ListQuery, detail: Detail) -> Result<UserPage, ServiceError> {
    let fetch = i64::try_from(PAGE_SIZE + 1).unwrap_or(i64::MAX);
    db.run(move |c| {
        let mut users = db::users::list(c, &query, fetch)?;
        let next = match users.get(PAGE_SIZE - 1) {
            Some(last) if users.len() > PAGE_SIZE => Some(query.cursor_after(last)),
            _ => None,
        };
        users.truncate(PAGE_SIZE);
        let users = match detail {
            Detail::Rows => users
                .into_iter()
                .map(|user| ListedUser {
                    user,
                    api_keys: 0,
                    providers: Vec::new(),
                })
                .collect(),
            Detail::SignInMethods => {
                let row = sign_in_methods(c, &users)?;
                users.into_iter().map(row).collect()
            }
        };
        Ok(UserPage { users, next })
    })
    .await
}

/// One account as a row of the user table (deleted ones too; `None`: no such id): the row an
/// action swaps in shows the same sign-in methods as the table.
pub async fn listed(db: &DbPool, id: i64) -> Result<Option<ListedUser>, ServiceError> {
    db.run(move |c| match db::users::find_by_id(c, id)? {
        Some(user) => Ok(Some(sign_in_methods(c, std::slice::from_ref(&user))?(user))),
        None => Ok(None),
    })
    .await
}

/// [`listed`] for an account already read (an action's answer): its methods only.
pub async fn listed_from(db: &DbPool, user: User) -> Result<ListedUser, ServiceError> {
    Ok(db
        .run(move |c| Ok::<_, db::DbError>(sign_in_methods(c, std::slice::from_ref(&user))?(user)))
        .await?)
}

/// Reads the API-key counts and linked providers of `users` (two indexed look-ups for all)
/// and gives what turns each of them into its row.
fn sign_in_methods(
    c: &mut db::Conn,
    users: &[User],
) -> Result<impl FnMut(User) -> ListedUser + use<>, db::DbError> {
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    let mut keys = db::api_keys::counts_of(c, &ids)?;
    let mut providers = db::identities::providers_of(c, &ids)?;
    Ok(move |user: User| ListedUser {
        api_keys: keys.remove(&user.id).unwrap_or(0),
        providers: providers.remove(&user.id).unwrap_or_default(),
        user,
    })
}

/// One account, deleted ones too (`None`: no such id). Each front end says "not found" in
/// its own words.
pub async fn get(db: &DbPool, id: i64) -> Result<Option<User>, ServiceError> {
    Ok(db.run(move |c| db::users::find_by_id(c, id)).await?)
}

/// Accounts waiting for approval (the admin navigation badge), up to [`PENDING_SHOWN`] + 1:
/// the badge says "99+" beyond, so no admin page pays for counting every pending account.
/// Kept under the change stamp in `kept`: every admin page shows it.
pub async fn pending_count(
    db: &DbPool,
    kept: &super::stamped::Stamped<i64>,
) -> Result<i64, ServiceError> {
    kept.get_or_read(db, || async {
        Ok(db
            .run(|c| db::users::count_pending(c, PENDING_SHOWN + 1))
            .await?)
    })
    .await
}

/// The largest pending count the navigation badge shows exactly.
pub const PENDING_SHOWN: i64 = 99;

/// Whether any account exists (the first admin was created: setup is over).
pub async fn any(db: &DbPool) -> Result<bool, ServiceError> {
    Ok(db.run(db::users::any).await?)
}
