//! Who a forward-auth request comes from: the session cookie or an API key, never a
//! password (no argon2 on this path). Sessions are read from the store directly — there is
//! no session layer on these endpoints — with the same rules as the session layer: version,
//! status, absolute lifetime, sliding idle expiry.

use std::net::IpAddr;
use std::sync::Arc;

use tower_sessions::SessionStore;
use tower_sessions::session::Id;

use super::{Authz, Ctx};
use crate::db::changes::Stamp;
use crate::domain::{Status, User};
use crate::env_auth::BREAK_GLASS_ID;
use crate::service::read_turns::Looked;
use crate::service::sessions::{self, EXPIRES_KEY, SignedIn, unix_ms};
use crate::service::stamped::StampedMap;
use crate::service::{ServiceError, api_keys};

/// What the request carried.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    None,
    /// The value of the session cookie.
    Cookie(&'a str),
    /// An API key (from `Authorization: Bearer` or the password of `Basic`).
    ApiKey(&'a str),
}

/// How a person was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Session,
    ApiKey,
    /// `HALLPASS_AUTH_BYPASS`.
    Bypass,
}

/// A recognised person and their groups.
#[derive(Debug, Clone)]
pub struct Person {
    pub user: Arc<User>,
    pub groups: Groups,
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    Person(Person, Via),
    /// The session's account was disabled since it signed in: not signed in any more, but
    /// the answer can say why.
    Ended(Arc<User>),
}

/// Cached session callers, and the groups of the people behind API keys (and
/// `HALLPASS_AUTH_BYPASS`), whose account comes from the key cache: without these, every
/// check of a key read its owner's groups. Each valid while the database's change stamp
/// stays (`service::stamped`).
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// By session cookie.
    entries: StampedMap<String, Entry>,
    /// By account.
    groups: StampedMap<i64, Groups>,
}

/// A person's groups: (id, name), by name.
pub type Groups = Arc<[(i64, String)]>;

#[derive(Debug, Clone)]
struct Entry {
    signed: SignedIn,
    person: Person,
}

impl Authz {
    /// Resolves the credentials. A bad API key is [`crate::service::Refusal::InvalidApiKey`]
    /// (rate-limited per client address like every key check).
    pub(super) async fn caller(
        &self,
        ctx: &Ctx<'_>,
        credentials: Credentials<'_>,
        stamp: Option<Stamp>,
        ip: IpAddr,
    ) -> Result<Caller, ServiceError> {
        if let Some(dev) = ctx.dev_admin
            && let Some(user) = crate::service::users::get(ctx.db, dev).await?
        {
            return self.person(ctx, Arc::new(user), Via::Bypass, stamp).await;
        }
        match credentials {
            Credentials::None => Ok(Caller::Anonymous),
            Credentials::ApiKey(key) => {
                let user = api_keys::sign_in(ctx.keys, ctx.secret, ctx.limiter, key, ip).await?;
                self.person(ctx, user, Via::ApiKey, stamp).await
            }
            Credentials::Cookie(cookie) => self.by_cookie(ctx, cookie, stamp).await,
        }
    }

    async fn person(
        &self,
        ctx: &Ctx<'_>,
        user: Arc<User>,
        via: Via,
        stamp: Option<Stamp>,
    ) -> Result<Caller, ServiceError> {
        let groups = self.groups_of(ctx, user.id, stamp).await?;
        Ok(Caller::Person(Person { user, groups }, via))
    }

    /// An account's groups, read once per change stamp (a stamp taken before the read, as
    /// for every cached answer: a membership change moves it).
    async fn groups_of(
        &self,
        ctx: &Ctx<'_>,
        user_id: i64,
        stamp: Option<Stamp>,
    ) -> Result<Groups, ServiceError> {
        let read = || async { Ok(Groups::from(super::groups_of(ctx.db, user_id).await?)) };
        self.callers.groups.get_or_read(&user_id, stamp, read).await
    }

    async fn by_cookie(
        &self,
        ctx: &Ctx<'_>,
        cookie: &str,
        stamp: Option<Stamp>,
    ) -> Result<Caller, ServiceError> {
        let now = unix_ms(time::OffsetDateTime::now_utc());
        let cached = |stamp: Stamp| {
            let usable = |hit: &Entry| {
                hit.signed.expires_at > now
                    && !hit.signed.lifetime_over(ctx.config)
                    && hit.signed.extension_due(ctx.config).is_none()
            };
            let entries = &self.callers.entries;
            entries.get(cookie, stamp, |hit| usable(hit).then(|| hit.clone()))
        };
        if let Some(hit) = stamp.and_then(cached) {
            return Ok(Caller::Person(hit.person, Via::Session));
        }
        // One read per cookie and stamp (`service::read_turns`): a page's asset checks.
        let _turn = match self.callers.entries.turn(cookie, stamp, cached).await {
            Looked::Hit(hit) => return Ok(Caller::Person(hit.person, Via::Session)),
            Looked::Miss(turn) => turn,
        };
        let Ok(id) = cookie.parse::<Id>() else {
            return Ok(Caller::Anonymous);
        };
        let (record, row) = sessions::capturing_user(async {
            let record = self.store.load(&id).await;
            (record, sessions::loaded_user())
        })
        .await;
        let Some(mut record) = record.map_err(store_failed)? else {
            return Ok(Caller::Anonymous);
        };
        let Some(signed) =
            SignedIn::from_data(|k| record.data.get(k).and_then(serde_json::Value::as_i64))
        else {
            return Ok(Caller::Anonymous);
        };
        if signed.lifetime_over(ctx.config) {
            return Ok(Caller::Anonymous);
        }
        let user = if signed.user_id == BREAK_GLASS_ID {
            ctx.config.env_auth.break_glass.as_ref().map(|b| b.user())
        } else {
            row.filter(|u| u.id == signed.user_id)
        };
        let Some(user) = user else {
            return Ok(Caller::Anonymous);
        };
        if !user.accepts_session(signed.session_version) {
            let disabled = user.deleted_at.is_none() && user.status == Status::Disabled;
            return Ok(if disabled {
                Caller::Ended(Arc::new(user))
            } else {
                Caller::Anonymous
            });
        }
        let mut signed = signed;
        let extended = signed.extension_due(ctx.config);
        if let Some(target) = extended {
            signed.expires_at = unix_ms(target);
            record
                .data
                .insert(EXPIRES_KEY.to_owned(), serde_json::json!(signed.expires_at));
            record.expiry_date = target;
            self.store.save(&record).await.map_err(store_failed)?;
        }
        let groups = if user.id == BREAK_GLASS_ID {
            Groups::from(Vec::new())
        } else {
            self.groups_of(ctx, user.id, stamp).await?
        };
        let person = Person {
            user: Arc::new(user),
            groups,
        };
        // The write above moved the stamp: that entry would never be found again.
        if let (Some(stamp), None) = (stamp, extended) {
            let entry = Entry {
                signed,
                person: person.clone(),
            };
            self.callers.entries.put(cookie.to_owned(), stamp, entry);
        }
        Ok(Caller::Person(person, Via::Session))
    }
}

fn store_failed(e: tower_sessions::session_store::Error) -> ServiceError {
    tracing::error!(error = %e, "forward-auth: cannot read the session");
    ServiceError::Internal("session store")
}
