//! `recover reset-password`, `reset-2fa`, `create-admin`, `disable-user` and `delete-user`: one account
//! changed through the same service calls as the admin pages.

use hallpass::domain::policy::PolicyError;
use hallpass::domain::{Email, Role, Username};
use hallpass::service::admin::{self, Change, InitialPassword, Profile};
use hallpass::service::recovery;
use hallpass::service::{Refusal, ServiceError};

use super::prompt::{confirm, new_password};
use super::{Ctx, Failure};

pub(super) fn reset_password(ctx: &Ctx, username: &str, from_stdin: bool) -> Result<(), Failure> {
    let user = ctx.user(username)?;
    let password = new_password(from_stdin, &user.username)?;
    let hasher = ctx.hasher()?;
    let change = Change::ResetPassword(password);
    let after = ctx.block(admin::apply(
        &ctx.db,
        &hasher,
        recovery::actor(),
        user.id,
        change,
    ))?;
    println!(
        "New password set for \"{}\"; their sessions have ended.",
        user.username
    );
    if let Some(u) = after.filter(|u| !u.may_sign_in()) {
        let standing = if u.deleted_at.is_some() {
            "deleted"
        } else {
            "disabled"
        };
        println!(
            "Note: the account is {standing}, so it still cannot sign in (an admin can restore \
             or enable it in /admin/users)."
        );
    }
    ctx.warn_if_local_login_off()
}

/// `recover reset-2fa`: the second factor goes, the sessions end; the instance's requirement
/// sends them to enrolment at their next sign-in.
pub(super) fn reset_two_factor(ctx: &Ctx, username: &str) -> Result<(), Failure> {
    let user = ctx.user(username)?;
    match ctx.block(hallpass::service::two_factor::reset(
        &ctx.db,
        recovery::actor(),
        user.id,
    )) {
        Ok(name) => {
            println!(
                "Two-factor sign-in removed for \"{name}\" (the authenticator app and every \
                 passkey); their sessions have ended. They sign in with their password alone, or \
                 set up a new second factor if the instance requires one."
            );
            Ok(())
        }
        Err(ServiceError::Refused(Refusal::NotFound(_))) => Err(Failure::Refused(format!(
            "\"{}\" has no second factor: nothing to reset",
            user.username
        ))),
        Err(ServiceError::Refused(Refusal::LastSignInMethod(why))) => Err(Failure::Refused(
            format!("{why} (`hallpass recover reset-password --username {username}`)"),
        )),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn create_admin(
    ctx: &Ctx,
    username: &str,
    email: Option<&str>,
    from_stdin: bool,
) -> Result<(), Failure> {
    let username =
        Username::parse(username).map_err(|m| Failure::Refused(format!("--username: {m}")))?;
    let email = email
        .map(Email::parse)
        .transpose()
        .map_err(|m| Failure::Refused(format!("--email: {m}")))?;
    if let Ok(existing) = ctx.block(recovery::find_user(&ctx.db, username.as_str())) {
        return Err(Failure::Failed(format!(
            "an account named \"{}\" already exists; to get into it, set a new password with \
             `hallpass recover reset-password --username {}`",
            existing.username, existing.username
        )));
    }
    let password = new_password(from_stdin, username.as_str())?;
    let hasher = ctx.hasher()?;
    let profile = Profile {
        username,
        email,
        display_name: None,
        role: Role::Admin,
    };
    let (user, _) = ctx.block(admin::create_user(
        &ctx.db,
        &hasher,
        recovery::actor(),
        profile,
        InitialPassword::Given(password),
    ))?;
    println!("Created \"{}\", an active admin.", user.username);
    ctx.warn_if_local_login_off()
}

pub(super) fn change_standing(
    ctx: &Ctx,
    username: &str,
    force: bool,
    change: Change,
) -> Result<(), Failure> {
    let user = ctx.user(username)?;
    let (doing, gerund, done) = match change {
        Change::Delete => ("delete", "deleting", "deleted"),
        _ => ("disable", "disabling", "disabled"),
    };
    if !force {
        confirm(
            &format!(
                "This will {doing} \"{}\" ({}, {}) and end their sessions.",
                user.username, user.role, user.status
            ),
            &user.username,
        )?;
    }
    let hasher = ctx.hasher()?;
    match ctx.block(admin::apply(
        &ctx.db,
        &hasher,
        recovery::actor(),
        user.id,
        change,
    )) {
        Err(ServiceError::Refused(Refusal::Policy(PolicyError::LastActiveAdmin))) => {
            return Err(Failure::Refused(format!(
                "\"{name}\" is the last active admin: {gerund} it would leave nobody able to \
                 administer Hallpass, so nothing was changed.\n\
                 Create another admin first:\n    \
                 hallpass recover create-admin --username NEW_NAME\n\
                 then run this again. (If the admin only lost its password:\n    \
                 hallpass recover reset-password --username {name})",
                name = user.username
            )));
        }
        other => {
            other?;
        }
    }
    println!(
        "\"{}\" is {done}; their sessions have ended. (An admin can undo this in \
         /admin/users.)",
        user.username
    );
    Ok(())
}
