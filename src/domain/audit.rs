//! What the audit log records: one enum of every action, so a new action cannot be recorded
//! without also appearing in the audit page's filter (the filter's choices are derived from
//! [`AuditAction::ALL`]).

/// Declares the enum, its `ALL` list and its stored names from one table, so the three
/// cannot drift apart.
macro_rules! audit_actions {
    ($($variant:ident => $name:literal,)*) => {
        /// One kind of audited event. The string form (`as_str`) is what the log stores and
        /// what the filter matches; never change one, old rows keep it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($variant,)*
        }

        impl AuditAction {
            /// Every action, in declaration order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }
        }
    };
}

audit_actions! {
    ApiKeyCreate => "api_key.create",
    ApiKeyRevoke => "api_key.revoke",
    AppCreate => "app.create",
    AppDelete => "app.delete",
    AppUpdate => "app.update",
    BackupFailed => "backup.failed",
    GroupCreate => "group.create",
    GroupDelete => "group.delete",
    GroupMemberAdd => "group.member_add",
    GroupMemberRemove => "group.member_remove",
    GroupRename => "group.rename",
    GroupUpdate => "group.update",
    IdentityLink => "identity.link",
    InviteAccept => "invite.accept",
    InviteCreate => "invite.create",
    InviteRevoke => "invite.revoke",
    IdentityUnlink => "identity.unlink",
    LoginBreakGlass => "login.break_glass",
    LoginOidc => "login.oidc",
    LoginPassword => "login.password",
    LoginProxy => "login.proxy",
    LoginPasskey => "login.passkey",
    LoginSecondFactor => "login.second_factor",
    PasskeyAdd => "passkey.add",
    PasskeyRemove => "passkey.remove",
    PasskeyRename => "passkey.rename",
    PasswordChange => "password.change",
    RateLimitApiKey => "rate_limit.api_key",
    RateLimitLift => "rate_limit.lift",
    RateLimitLogin => "rate_limit.login",
    RateLimitMetricsToken => "rate_limit.metrics_token",
    RateLimitPasswordChange => "rate_limit.password_change",
    RateLimitRegister => "rate_limit.register",
    RateLimitSecondFactor => "rate_limit.second_factor",
    RateLimitSetup => "rate_limit.setup",
    RateLimitSsoLink => "rate_limit.sso_link",
    SessionEnd => "session.end",
    SessionEndOthers => "session.end_others",
    SettingsProxyPreset => "settings.proxy_preset",
    SettingsSignIn => "settings.sign_in",
    SettingsTwoFactor => "settings.two_factor",
    SettingsUpdate => "settings.update",
    SetupFirstAdmin => "setup.first_admin",
    SsoProviderCreate => "sso.provider.create",
    SsoProviderDelete => "sso.provider.delete",
    SsoProviderDisable => "sso.provider.disable",
    SsoProviderEnable => "sso.provider.enable",
    SsoProviderRevert => "sso.provider.revert",
    SsoProviderUpdate => "sso.provider.update",
    SsoWipe => "sso.wipe",
    TwoFactorDisable => "two_factor.disable",
    TwoFactorEnable => "two_factor.enable",
    TwoFactorReset => "two_factor.reset",
    UserApprove => "user.approve",
    UserCreate => "user.create",
    UserDelete => "user.delete",
    UserDisable => "user.disable",
    UserEdit => "user.edit",
    UserEnable => "user.enable",
    UserPasswordReset => "user.password_reset",
    UserPurge => "user.purge",
    UserRegister => "user.register",
    UserReject => "user.reject",
    UserRestore => "user.restore",
    UserUpdate => "user.update",
}

impl AuditAction {
    /// The audit filter's choices: every action and every group of actions (`login.` selects
    /// all sign-ins), sorted so a group comes right before its members.
    pub fn filter_choices() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::with_capacity(Self::ALL.len() + 12);
        for a in Self::ALL {
            let s = a.as_str();
            if let Some(dot) = s.find('.') {
                // The prefix with its dot, as a slice of the static string.
                out.push(&s[..=dot]);
            }
            out.push(s);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn every_action_is_listed_once_and_spelled_once() {
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "an action string is used twice");
        assert!(n > 30);
    }

    #[test]
    fn the_filter_offers_groups_before_their_members() {
        let choices = AuditAction::filter_choices();
        let login = choices.iter().position(|c| *c == "login.");
        let password = choices.iter().position(|c| *c == "login.password");
        assert!(matches!((login, password), (Some(l), Some(p)) if l < p));
        assert!(choices.contains(&"api_key.create"), "{choices:?}");
        let mut sorted = choices.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, choices);
    }
}
