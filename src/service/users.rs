//! Reads about accounts that both front ends show: the admin user table, one account, the
//! pending count of the navigation badge, and whether any account exists yet. The HTML
//! page and the JSON API call these, so they assemble the same data in one place.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::ServiceError;
use super::stamped::Taken;
use crate::db::changes::Stamp;
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
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<ListedUser>,
    /// The `after` cursor of the next page, when there is one.
    pub next: Option<String>,
    derived: Derived,
}

impl UserPage {
    fn new(users: Vec<ListedUser>, next: Option<String>) -> Self {
        Self {
            users,
            next,
            derived: Derived::default(),
        }
    }

    /// What a front end builds from this page, built once and kept with it while the page is
    /// kept ([`KeptPages`]): the HTML table's rows (their texts escaped, their times
    /// formatted) were a fifth of a kept page's instructions when built at every request.
    /// `None` if something of another type was kept first (the caller then builds its own).
    pub fn derived<T: std::any::Any + Send + Sync>(
        &self,
        build: impl FnOnce(&Self) -> T,
    ) -> Option<&T> {
        self.derived
            .0
            .get_or_init(|| Box::new(build(self)))
            .downcast_ref()
    }
}

#[derive(Default)]
struct Derived(std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>);

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Derived(built)"
        } else {
            "Derived"
        })
    }
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

/// One page of users: the one kept in `kept` if nothing it shows changed since it was read,
/// else read now (and kept).
pub async fn list(
    db: &DbPool,
    kept: &KeptPages,
    query: ListQuery,
    detail: Detail,
) -> Result<Arc<UserPage>, ServiceError> {
    // Taken before the read: a commit during it leaves the page under a stale stamp.
    list_at(db, kept, Taken::now(db).await, query, detail).await
}

/// [`list`] under a stamp the request already took.
pub async fn list_at(
    db: &DbPool,
    kept: &KeptPages,
    at: Taken,
    query: ListQuery,
    detail: Detail,
) -> Result<Arc<UserPage>, ServiceError> {
    match at.listing() {
        Some(stamp) => {
            let read = || read_page(db, query.clone(), detail);
            kept.get_or_read(stamp, &query, detail, read).await
        }
        None => Ok(Arc::new(read_page(db, query, detail).await?)),
    }
}

/// One page of users, read on one connection. One row more than a page is fetched, to know
/// whether another page follows.
async fn read_page(
    db: &DbPool,
    query: ListQuery,
    detail: Detail,
) -> Result<UserPage, ServiceError> {
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
        Ok(UserPage::new(users, next))
    })
    .await
}

/// The pages of the user table read last, kept while the database's listing stamp stays the
/// same ([`DbPool::listing_stamp`]): any commit on SQLite; on PostgreSQL any write to what a
/// page shows, the last sign-in included. No TTL, like [`super::stamped::Stamped`]: a page
/// is never shown older than the last commit before the request. An admin paging back and
/// forth, several admins, or many requests at once for one page then cost one read.
#[derive(Debug, Default)]
pub struct KeptPages {
    slot: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    /// The stamp every kept page was read under.
    stamp: Option<Stamp>,
    /// The most recently used first.
    pages: VecDeque<(ListQuery, Detail, Arc<UserPage>)>,
    /// The pages being read under `stamp`, for the requests that want them meanwhile.
    reading: Vec<(ListQuery, Detail, Flight)>,
}

/// One read of a page, shared by every request that misses it at the same time.
type Flight = Arc<tokio::sync::OnceCell<Arc<UserPage>>>;

/// At most this many reads are shared at once (a read whose requests all went away stays
/// until the stamp moves; past this, the oldest is forgotten and simply not shared).
const READING_MAX: usize = 64;

/// How many pages are kept: a page of 50 accounts is ~25 KB.
const KEPT_PAGES: usize = 16;

impl KeptPages {
    /// The page of `query` kept under `stamp`, else the one `read` reads (and kept). Read
    /// once for all the requests that miss it under the same stamp at the same time: a commit
    /// makes every kept page stale at once, and without this the 64 requests waiting for the
    /// same page each read it (bench/README.md). If the read fails, the next waiting request
    /// reads in its turn.
    async fn get_or_read<F, Fut>(
        &self,
        stamp: Stamp,
        query: &ListQuery,
        detail: Detail,
        read: F,
    ) -> Result<Arc<UserPage>, ServiceError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<UserPage, ServiceError>>,
    {
        if let Some(page) = self.get(stamp, query, detail) {
            return Ok(page);
        }
        let Some(flight) = self.flight(stamp, query, detail) else {
            return Ok(Arc::new(read().await?));
        };
        let page = flight
            .get_or_try_init(|| async { read().await.map(Arc::new) })
            .await?;
        let page = Arc::clone(page);
        self.put(stamp, query.clone(), detail, Arc::clone(&page));
        if let Ok(mut kept) = self.slot.lock() {
            kept.reading.retain(|(_, _, f)| !Arc::ptr_eq(f, &flight));
        }
        Ok(page)
    }

    /// The shared read of `query` under `stamp`, begun now if none is under way.
    fn flight(&self, stamp: Stamp, query: &ListQuery, detail: Detail) -> Option<Flight> {
        let mut kept = self.slot.lock().ok()?;
        if kept.stamp != Some(stamp) {
            kept.stamp = Some(stamp);
            kept.pages.clear();
            kept.reading.clear();
        }
        if let Some((_, _, f)) = kept
            .reading
            .iter()
            .find(|(q, d, _)| q == query && *d == detail)
        {
            return Some(Arc::clone(f));
        }
        if kept.reading.len() >= READING_MAX {
            kept.reading.remove(0);
        }
        let flight = Flight::default();
        kept.reading
            .push((query.clone(), detail, Arc::clone(&flight)));
        Some(flight)
    }

    /// The page of `query` read under `stamp`, if kept. A page with the sign-in methods also
    /// answers for the rows alone.
    fn get(&self, stamp: Stamp, query: &ListQuery, detail: Detail) -> Option<Arc<UserPage>> {
        let mut kept = self.slot.lock().ok()?;
        if kept.stamp != Some(stamp) {
            return None;
        }
        let at = kept
            .pages
            .iter()
            .position(|(q, d, _)| q == query && (*d == detail || *d == Detail::SignInMethods))?;
        let entry = kept.pages.remove(at)?;
        let page = Arc::clone(&entry.2);
        kept.pages.push_front(entry);
        Some(page)
    }

    /// Keeps `page`, read under `stamp`; pages read under another stamp are dropped.
    fn put(&self, stamp: Stamp, query: ListQuery, detail: Detail, page: Arc<UserPage>) {
        let Ok(mut kept) = self.slot.lock() else {
            return;
        };
        if kept.stamp != Some(stamp) {
            kept.stamp = Some(stamp);
            kept.pages.clear();
            kept.reading.clear();
        }
        kept.pages
            .retain(|(q, d, _)| !(*q == query && *d == detail));
        kept.pages.push_front((query, detail, page));
        kept.pages.truncate(KEPT_PAGES);
    }
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
    pending_count_at(db, kept, Taken::now(db).await).await
}

/// [`pending_count`] under a stamp the request already took.
pub async fn pending_count_at(
    db: &DbPool,
    kept: &super::stamped::Stamped<i64>,
    at: Taken,
) -> Result<i64, ServiceError> {
    kept.get_or_read_at(at, || async {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> ListQuery {
        ListQuery::parse(q, "", "", "", "", "").unwrap()
    }

    fn page() -> Arc<UserPage> {
        Arc::new(UserPage::new(Vec::new(), None))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_miss_together_share_one_read() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let kept = Arc::new(KeptPages::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let ask = |stamp: Stamp, fail: bool| {
            let (kept, reads) = (Arc::clone(&kept), Arc::clone(&reads));
            tokio::spawn(async move {
                let read = || async {
                    reads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    if fail {
                        return Err(ServiceError::Internal("down"));
                    }
                    Ok(UserPage::new(Vec::new(), None))
                };
                kept.get_or_read(stamp, &query("ann"), Detail::SignInMethods, read)
                    .await
            })
        };
        let one = Stamp::DataVersion(1);
        let asked: Vec<_> = (0..8).map(|_| ask(one, false)).collect();
        let mut pages = Vec::new();
        for a in asked {
            pages.push(a.await.unwrap().unwrap());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "eight requests, one read");
        assert!(pages.iter().all(|p| Arc::ptr_eq(p, &pages[0])));
        // Kept afterwards; a new stamp reads again.
        ask(one, false).await.unwrap().unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        ask(Stamp::DataVersion(2), false).await.unwrap().unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A failed read is not shared as a failure forever: the next request reads again.
        let three = Stamp::DataVersion(3);
        assert!(ask(three, true).await.unwrap().is_err());
        assert!(ask(three, false).await.unwrap().is_ok());
        assert_eq!(reads.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn what_a_front_end_derives_is_built_once_per_page() {
        let page = page();
        let mut builds = 0;
        for _ in 0..3 {
            let got = page.derived(|p| {
                builds += 1;
                p.users.len() + 7
            });
            assert_eq!(got, Some(&7));
        }
        assert_eq!(builds, 1);
        // Another type than the one kept: not built, not kept.
        assert_eq!(page.derived(|_| "other"), None);
    }

    #[test]
    fn a_page_is_kept_under_its_stamp_only() {
        let kept = KeptPages::default();
        let (one, two) = (Stamp::DataVersion(1), Stamp::DataVersion(2));
        let first = page();
        kept.put(one, query("ann"), Detail::SignInMethods, Arc::clone(&first));
        let got = kept.get(one, &query("ann"), Detail::SignInMethods);
        assert!(got.is_some_and(|p| Arc::ptr_eq(&p, &first)));
        assert!(
            kept.get(one, &query("bob"), Detail::SignInMethods)
                .is_none()
        );
        // The table's page (with the sign-in methods) answers the JSON list too, not back.
        assert!(kept.get(one, &query("ann"), Detail::Rows).is_some());
        kept.put(one, query("bob"), Detail::Rows, page());
        assert!(
            kept.get(one, &query("bob"), Detail::SignInMethods)
                .is_none()
        );
        // After a commit, nothing kept is served, and a page read under the new stamp
        // drops the old ones.
        assert!(
            kept.get(two, &query("ann"), Detail::SignInMethods)
                .is_none()
        );
        kept.put(two, query("bob"), Detail::Rows, page());
        assert!(kept.get(two, &query("bob"), Detail::Rows).is_some());
        assert!(
            kept.get(one, &query("ann"), Detail::SignInMethods)
                .is_none()
        );
        assert!(
            kept.get(two, &query("ann"), Detail::SignInMethods)
                .is_none()
        );
    }

    #[test]
    fn the_least_recently_used_page_goes_first() {
        let kept = KeptPages::default();
        let stamp = Stamp::DataVersion(1);
        for i in 0..KEPT_PAGES {
            kept.put(stamp, query(&format!("user{i}")), Detail::Rows, page());
        }
        // Using the oldest makes the second oldest the one to go.
        assert!(kept.get(stamp, &query("user0"), Detail::Rows).is_some());
        kept.put(stamp, query("one more"), Detail::Rows, page());
        assert!(kept.get(stamp, &query("user0"), Detail::Rows).is_some());
        assert!(kept.get(stamp, &query("user1"), Detail::Rows).is_none());
        assert!(kept.get(stamp, &query("one more"), Detail::Rows).is_some());
        let count = kept.slot.lock().unwrap().pages.len();
        assert_eq!(count, KEPT_PAGES);
    }
}
