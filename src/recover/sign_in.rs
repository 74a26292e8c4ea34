//! `recover wipe-sso` and `recover enable-local`: the sign-in methods put back to
//! passwords.

use hallpass::domain::sso::{PROXY_PROVIDER, Source};
use hallpass::service::recovery;

use super::prompt::confirm;
use super::{Ctx, Failure};

pub(super) fn wipe_sso(ctx: &Ctx, force: bool) -> Result<(), Failure> {
    if !force {
        let o = ctx.block(recovery::overview(&ctx.db, &ctx.config.sso))?;
        let stored = o
            .providers
            .iter()
            .filter(|p| p.source == Source::Ui)
            .count();
        let links = o
            .accounts
            .iter()
            .flat_map(|a| &a.identities)
            .filter(|i| i.provider != PROXY_PROVIDER)
            .count();
        confirm(
            &format!(
                "This deletes {stored} stored SSO provider(s) and {links} SSO identity link(s), \
                 turns SSO login off and password sign-in on, and signs everyone out."
            ),
            "wipe-sso",
        )?;
    }
    let wiped = ctx.block(recovery::wipe_sso(&ctx.db, recovery::actor()))?;
    println!(
        "Removed {} stored SSO provider(s) and {} SSO identity link(s). SSO login is off, \
         password sign-in is on, and the sessions of all {} account(s) have ended.",
        wiped.providers, wiped.identities, wiped.accounts
    );
    if !ctx.config.sso.providers.is_empty() {
        let ids: Vec<&str> = ctx
            .config
            .sso
            .providers
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        println!(
            "Providers defined in the environment are not stored and were kept: {} \
             (remove them from HALLPASS_OIDC_PROVIDERS). SSO login stays off until an admin \
             turns it on in /admin/sso.",
            ids.join(", ")
        );
    }
    if !wiped.without_password.is_empty() {
        println!(
            "These accounts have no password and cannot sign in until they get one \
             (`hallpass recover reset-password --username NAME`): {}",
            wiped.without_password.join(", ")
        );
    }
    Ok(())
}

pub(super) fn enable_local(ctx: &Ctx) -> Result<(), Failure> {
    let changed = ctx.block(recovery::enable_local(&ctx.db, recovery::actor()))?;
    if changed {
        println!("Password sign-in is on again.");
    } else {
        println!("Password sign-in was already on.");
    }
    Ok(())
}
