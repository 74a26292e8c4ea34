//! Groups and their members, for the HTML pages and the JSON API alike. Every write runs in
//! one locked transaction that checks its rules, writes, bumps `settings.rules_version`
//! (forward-auth reloads its rules when it moves, so a change takes effect on the next
//! request) and records an audit event.

use super::{Actor, Missing, Refusal, ServiceError};
use crate::db::{self, Conn, DbPool, groups, settings, users};
use crate::domain::User;
use crate::domain::audit::AuditAction;
use crate::domain::groups::{ADMIN_SOURCE, ClaimChanges, Group, GroupInput, Member, name_key};

/// A group with what its page shows.
#[derive(Debug, Clone)]
pub struct GroupDetail {
    pub group: Group,
    pub members: Vec<Member>,
    /// Names of the apps whose rules name this group (deleting it removes it from them).
    pub apps: Vec<String>,
}

/// Who to add to a group: by account id (the API, the user's edit page) or by username
/// (the group page's form).
#[derive(Debug, Clone)]
pub enum MemberRef {
    Id(i64),
    Username(String),
}

/// Every group by name, with member counts.
pub async fn list(db: &DbPool) -> Result<Vec<Group>, ServiceError> {
    Ok(db.run(groups::list).await?)
}

/// [`list`], kept under the change stamp in `kept` (the user table's group filter, on every
/// page of it), under the stamp the page took.
pub async fn list_kept(
    db: &DbPool,
    kept: &super::stamped::Stamped<std::sync::Arc<Vec<Group>>>,
    at: super::stamped::Taken,
) -> Result<std::sync::Arc<Vec<Group>>, ServiceError> {
    kept.get_or_read_at(at, || async { Ok(std::sync::Arc::new(list(db).await?)) })
        .await
}

/// One group, or `NotFound(Group)`.
pub async fn get(db: &DbPool, id: i64) -> Result<Group, ServiceError> {
    db.run(move |c| found(c, id)).await
}

/// One group with its members and the apps that name it.
pub async fn detail(db: &DbPool, id: i64) -> Result<GroupDetail, ServiceError> {
    db.run(move |c| {
        let group = found(c, id)?;
        Ok(GroupDetail {
            members: groups::members(c, id)?,
            apps: groups::apps_naming(c, id)?,
            group,
        })
    })
    .await
}

/// The groups `user_id` is in, as (group id, source).
pub async fn memberships_of(db: &DbPool, user_id: i64) -> Result<Vec<(i64, String)>, ServiceError> {
    Ok(db.run(move |c| groups::memberships_of(c, user_id)).await?)
}

fn found(conn: &mut Conn, id: i64) -> Result<Group, ServiceError> {
    groups::find(conn, id)?.ok_or(ServiceError::from(Missing::Group))
}

/// Refuses a name another group (other than `except`) has in any case.
fn check_name(
    conn: &mut Conn,
    input: &GroupInput,
    except: Option<i64>,
) -> Result<(), ServiceError> {
    if groups::key_taken(conn, &input.name.key(), except)? {
        return Err(Refusal::GroupNameTaken(input.name.as_str().to_owned()).into());
    }
    Ok(())
}

/// A unique-key race the check inside the lock cannot lose is still answered as a refusal.
fn taken_on_race(e: ServiceError, input: &GroupInput) -> ServiceError {
    match e {
        ServiceError::Db(d) if d.is_unique_violation() => {
            Refusal::GroupNameTaken(input.name.as_str().to_owned()).into()
        }
        other => other,
    }
}

pub async fn create(db: &DbPool, actor: Actor, input: GroupInput) -> Result<Group, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            check_name(conn, &input, None)?;
            let id = groups::insert(conn, &input.name, input.description.as_deref())?;
            settings::bump_rules_version(conn)?;
            let target = Some(input.name.as_str());
            super::audit::record(conn, &actor, AuditAction::GroupCreate, target, None)?;
            found(conn, id)
        })
        .map_err(|e| taken_on_race(e, &input))
    })
    .await
}

/// Renames a group and/or changes its description. A rename is audited as
/// `group.rename` ("old -> new"), a description change as `group.update`.
pub async fn update(
    db: &DbPool,
    actor: Actor,
    id: i64,
    input: GroupInput,
) -> Result<Group, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let before = found(conn, id)?;
            check_name(conn, &input, Some(id))?;
            let renamed = before.name != input.name.as_str();
            let described = before.description != input.description;
            if !renamed && !described {
                return Ok(before);
            }
            groups::update(conn, id, &input.name, input.description.as_deref())?;
            settings::bump_rules_version(conn)?;
            let name = input.name.as_str();
            if renamed {
                let detail = format!("{} -> {name}", before.name);
                let action = AuditAction::GroupRename;
                super::audit::record(conn, &actor, action, Some(name), Some(&detail))?;
            }
            if described {
                let action = AuditAction::GroupUpdate;
                super::audit::record(conn, &actor, action, Some(name), Some("description"))?;
            }
            found(conn, id)
        })
        .map_err(|e| taken_on_race(e, &input))
    })
    .await
}

/// Deletes a group: its memberships go with it, and so does every app rule's reference to
/// it (the audit detail names those apps).
pub async fn delete(db: &DbPool, actor: Actor, id: i64) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let group = found(conn, id)?;
            let apps = groups::apps_naming(conn, id)?;
            groups::delete(conn, id)?;
            settings::bump_rules_version(conn)?;
            let n = group.members;
            let mut detail = format!("{n} member{}", if n == 1 { "" } else { "s" });
            if !apps.is_empty() {
                detail.push_str(&format!("; removed from apps: {}", apps.join(", ")));
            }
            let target = Some(group.name.as_str());
            let action = AuditAction::GroupDelete;
            super::audit::record(conn, &actor, action, target, Some(&detail))?;
            Ok(())
        })
    })
    .await
}

/// The account `who` names, which must exist and not be deleted.
fn member_account(conn: &mut Conn, who: &MemberRef) -> Result<User, ServiceError> {
    let user = match who {
        MemberRef::Id(id) => users::find_by_id(conn, *id)?,
        // By username only (not email: a group member is named by their username).
        MemberRef::Username(name) => users::find_by_login(conn, &name.trim().to_lowercase())?
            .filter(|u| u.username.to_lowercase() == name.trim().to_lowercase()),
    }
    .ok_or(ServiceError::from(Missing::Account))?;
    if user.deleted_at.is_some() {
        return Err(Refusal::AccountDeleted(user.username).into());
    }
    Ok(user)
}

/// Adds an account to a group as an administrator's membership. One a groups claim made
/// becomes the administrator's (a sign-in no longer removes it); one the administrator made
/// already is refused as `AlreadyMember`.
pub async fn add_member(
    db: &DbPool,
    actor: Actor,
    id: i64,
    who: MemberRef,
) -> Result<User, ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let group = found(conn, id)?;
            let user = member_account(conn, &who)?;
            let detail = match groups::membership(conn, id, user.id)?.as_deref() {
                Some(ADMIN_SOURCE) => return Err(Refusal::AlreadyMember(user.username).into()),
                Some(claim) => {
                    groups::set_source(conn, id, user.id, ADMIN_SOURCE)?;
                    format!("{} (kept by an admin; was from {claim})", group.name)
                }
                None => {
                    groups::add_member(conn, id, user.id, ADMIN_SOURCE)?;
                    group.name.clone()
                }
            };
            settings::bump_rules_version(conn)?;
            let (action, target) = (AuditAction::GroupMemberAdd, Some(user.username.as_str()));
            super::audit::record(conn, &actor, action, target, Some(&detail))?;
            Ok(user)
        })
    })
    .await
}

/// Removes an account from a group, whoever made the membership (one from a groups claim
/// comes back at the account's next sign-in while the claim names the group).
pub async fn remove_member(
    db: &DbPool,
    actor: Actor,
    id: i64,
    user_id: i64,
) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let group = found(conn, id)?;
            let user =
                users::find_by_id(conn, user_id)?.ok_or(ServiceError::from(Missing::Account))?;
            if !groups::remove_member(conn, id, user_id)? {
                return Err(ServiceError::from(Missing::Account));
            }
            settings::bump_rules_version(conn)?;
            let (action, target) = (AuditAction::GroupMemberRemove, Some(user.username.as_str()));
            super::audit::record(conn, &actor, action, target, Some(&group.name))?;
            Ok(())
        })
    })
    .await
}

/// Makes `user_id` a member of exactly the groups `wanted` (the checkboxes of the user's
/// edit page): joins the missing ones as an administrator's memberships and leaves the
/// unticked ones, whoever made them. Memberships that stay are not changed. One audit event
/// per change; nothing is written when nothing changes.
pub async fn set_user_groups(
    db: &DbPool,
    actor: Actor,
    user_id: i64,
    wanted: Vec<i64>,
) -> Result<(), ServiceError> {
    db.run(move |conn| {
        db::write_tx(conn, |conn| {
            let user =
                users::find_by_id(conn, user_id)?.ok_or(ServiceError::from(Missing::Account))?;
            let current: Vec<i64> = groups::memberships_of(conn, user_id)?
                .into_iter()
                .map(|(g, _)| g)
                .collect();
            let add: Vec<i64> = wanted
                .iter()
                .filter(|g| !current.contains(g))
                .copied()
                .collect();
            let remove: Vec<i64> = current
                .iter()
                .filter(|g| !wanted.contains(g))
                .copied()
                .collect();
            if add.is_empty() && remove.is_empty() {
                return Ok(());
            }
            if !add.is_empty() && user.deleted_at.is_some() {
                return Err(Refusal::AccountDeleted(user.username).into());
            }
            let mut all = add.clone();
            all.extend(&remove);
            let names = groups::names(conn, &all)?;
            let target = Some(user.username.as_str());
            for g in add {
                let name = names.get(&g).ok_or(ServiceError::from(Missing::Group))?;
                groups::add_member(conn, g, user_id, ADMIN_SOURCE)?;
                super::audit::record(
                    conn,
                    &actor,
                    AuditAction::GroupMemberAdd,
                    target,
                    Some(name),
                )?;
            }
            for g in remove {
                groups::remove_member(conn, g, user_id)?;
                let name = names.get(&g).map_or("", String::as_str);
                let action = AuditAction::GroupMemberRemove;
                super::audit::record(conn, &actor, action, target, Some(name))?;
            }
            settings::bump_rules_version(conn)?;
            Ok(())
        })
    })
    .await
}

/// What a sign-in's groups claim would change for account `user_id` (read only): see
/// [`crate::domain::groups::claim_changes`]. `source` is the sign-in source's id (`proxy`
/// or an OIDC provider id), `claimed` the names it sent.
pub(crate) fn claim_changes(
    conn: &mut Conn,
    user_id: i64,
    source: &str,
    claimed: &[String],
) -> Result<ClaimChanges, db::DbError> {
    let mut keys: Vec<String> = claimed.iter().map(|n| name_key(n)).collect();
    keys.sort_unstable();
    keys.dedup();
    let existing = groups::with_keys(conn, &keys)?;
    let current = groups::memberships_of(conn, user_id)?;
    Ok(crate::domain::groups::claim_changes(
        source, claimed, &existing, &current,
    ))
}

/// Refreshes the memberships `source`'s groups claim gives `user` at a sign-in, inside the
/// sign-in's transaction: joins the existing groups it names, leaves those it gave before
/// and no longer names, never touches an administrator's (or another source's) memberships.
/// Each change is audited by `actor` (the source); `rules_version` moves when any happens.
pub(crate) fn sync_claim(
    conn: &mut Conn,
    actor: &Actor,
    user: &User,
    source: &str,
    claimed: &[String],
) -> Result<(), db::DbError> {
    if source == ADMIN_SOURCE {
        // A provider stored as `admin` before that id was reserved: its claim would pass
        // for administrators' memberships, so it is not read.
        tracing::warn!(
            "the groups claim of a provider named \"admin\" is ignored: rename the provider"
        );
        return Ok(());
    }
    let changes = claim_changes(conn, user.id, source, claimed)?;
    if changes.is_empty() {
        return Ok(());
    }
    let mut ids = changes.add.clone();
    ids.extend(&changes.remove);
    let names = groups::names(conn, &ids)?;
    let target = Some(user.username.as_str());
    for (ids, action) in [
        (&changes.add, AuditAction::GroupMemberAdd),
        (&changes.remove, AuditAction::GroupMemberRemove),
    ] {
        for g in ids {
            if action == AuditAction::GroupMemberAdd {
                groups::add_member(conn, *g, user.id, source)?;
            } else {
                groups::remove_member(conn, *g, user.id)?;
            }
            let name = names.get(g).map_or("", String::as_str);
            let detail = format!("{name} (groups claim of {source})");
            super::audit::record(conn, actor, action, target, Some(&detail))?;
        }
    }
    settings::bump_rules_version(conn)
}

/// Ends every membership `source`'s groups claim made (the provider is removed, or no
/// longer has a groups claim: nothing would refresh them again). Returns how many ended.
pub(crate) fn drop_claimed(conn: &mut Conn, source: &str) -> Result<usize, db::DbError> {
    if source == ADMIN_SOURCE {
        return Ok(0);
    }
    let n = groups::remove_by_source(conn, source)?;
    if n > 0 {
        settings::bump_rules_version(conn)?;
    }
    Ok(n)
}
