//! The rule tester: "what would forward-auth answer to this request, from this person?",
//! decided by the same [`AppTable::decide`](crate::domain::apps::AppTable::decide) on the same
//! live rules as the proxies get, with the person's real role, status and groups.

use super::ServiceError;
use crate::db::{self, DbPool};
use crate::domain::apps::{Protected, RuleTest, Subject, TestRequest};
use crate::domain::{FieldErrors, User};
use crate::service::authz::Authz;

/// Tests `method` `url` for `username` (empty: an anonymous visitor). Bad input is a
/// `Validation` error keyed `url`, `method` or `username`.
pub async fn test_rule(
    db: &DbPool,
    authz: &Authz,
    url: &str,
    username: &str,
    method: &str,
) -> Result<RuleTest, ServiceError> {
    let mut errors = FieldErrors::new();
    let request = TestRequest::parse(url, method)
        .map_err(|(field, message)| errors.add(field, message))
        .ok();
    let username = username.trim();
    let who = if username.is_empty() {
        None
    } else {
        let found = account(db, username).await?;
        if found.is_none() {
            errors.add("username", format!("No account named “{username}”."));
        }
        found
    };
    let (Some(request), true) = (request, errors.is_empty()) else {
        return Err(ServiceError::Validation(errors));
    };
    let table = authz.table(db).await?;
    let subject = who.as_ref().map(|(user, groups)| Subject {
        user_id: user.id,
        role: user.role,
        status: user.status,
        groups,
    });
    let verdict = table.decide(
        Protected {
            method: &request.method,
            host: &request.host,
            path: &request.path,
        },
        subject,
    );
    Ok(RuleTest::of(&verdict, &request, table.default_policy()))
}

/// The account `name` (username or email, any case; not deleted) and its group ids.
async fn account(db: &DbPool, name: &str) -> Result<Option<(User, Vec<i64>)>, ServiceError> {
    let key = name.to_lowercase();
    Ok(db
        .run(move |c| {
            let Some(user) = db::users::find_by_login(c, &key)? else {
                return Ok::<_, db::DbError>(None);
            };
            if user.deleted_at.is_some() {
                return Ok(None);
            }
            let groups = db::groups::of_user(c, user.id)?;
            Ok(Some((user, groups.into_iter().map(|(id, _)| id).collect())))
        })
        .await?)
}
