//! Reads the single sign-on screens share (the account page, the admin's SSO and proxy
//! pages): one linked identity, the account an admin links an identity to, the links of the
//! forward-auth proxy. Kept here so no front end reads the database itself.

use super::identities::LinkView;
use crate::db::{DbPool, identities, users};
use crate::domain::User;
use crate::domain::sso::{LinkedIdentity, PROXY_PROVIDER};
use crate::service::ServiceError;

/// A linked identity by id.
pub async fn identity(db: &DbPool, id: i64) -> Result<Option<LinkedIdentity>, ServiceError> {
    Ok(db.run(move |conn| identities::get(conn, id)).await?)
}

/// A linked identity by id, if it is linked to `user_id` (a user's own identities).
pub async fn own_identity(
    db: &DbPool,
    user_id: i64,
    id: i64,
) -> Result<Option<LinkedIdentity>, ServiceError> {
    Ok(identity(db, id).await?.filter(|i| i.user_id == user_id))
}

/// A linked identity by id and the account it is linked to.
pub async fn identity_and_owner(
    db: &DbPool,
    id: i64,
) -> Result<Option<(LinkedIdentity, User)>, ServiceError> {
    let Some(link) = identity(db, id).await? else {
        return Ok(None);
    };
    let user_id = link.user_id;
    let owner = db.run(move |conn| users::find_by_id(conn, user_id)).await?;
    Ok(owner.map(|owner| (link, owner)))
}

/// The account an admin names to link an identity to: by username (or email),
/// case-insensitively; deleted accounts are not offered.
pub async fn link_target(db: &DbPool, username: &str) -> Result<Option<User>, ServiceError> {
    let key = username.trim().to_lowercase();
    let found = db.run(move |conn| users::find_by_login(conn, &key)).await?;
    Ok(found.filter(|u| u.deleted_at.is_none()))
}

/// The user names a forward-auth proxy sends that are linked to accounts. They have no
/// issuer to go stale against.
pub async fn proxy_links(db: &DbPool) -> Result<Vec<LinkView>, ServiceError> {
    let links = db
        .run(|conn| identities::for_provider(conn, PROXY_PROVIDER))
        .await?;
    Ok(links
        .into_iter()
        .map(|(identity, username)| LinkView {
            identity,
            username,
            stale: false,
        })
        .collect())
}
