//! The forward-auth decision: which rule applies to a request and what it says about the
//! caller. The same function answers the proxies and the rule tester on `/admin/apps`.

use super::{Access, App, AppTable, DefaultPolicy};
use crate::domain::{Role, Status};

/// The request a proxy asks about.
#[derive(Debug, Clone, Copy)]
pub struct Protected<'a> {
    /// Upper case, as sent (`GET`, `POST`…).
    pub method: &'a str,
    /// Lower case, without port.
    pub host: &'a str,
    /// The path, without query.
    pub path: &'a str,
}

/// The caller, when signed in.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub user_id: i64,
    pub role: Role,
    pub status: Status,
    /// Ids of the groups the user is in.
    pub groups: &'a [i64],
}

/// What the proxy is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Anonymous, and the rule needs a signed-in account.
    SignIn,
    Deny(Denied),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The rule does not list this account (by role, group or name).
    NotListed,
    /// The account is not active (pending, rejected, disabled).
    Status(Status),
    /// A viewer tried to change something on a read-only-for-viewers app.
    ReadOnly,
    /// No app matches and `auth.forward.default_policy` is `deny`.
    NoApp,
}

/// The decision and the rule that made it.
#[derive(Debug, Clone, Copy)]
pub struct Verdict<'a> {
    pub decision: Decision,
    /// `None`: no app matched and the default policy decided.
    pub app: Option<&'a App>,
}

impl Verdict<'_> {
    /// One sentence for the rule tester and the logs: which rule, and why.
    pub fn explain(&self, default_policy: DefaultPolicy) -> String {
        let rule = match self.app {
            Some(app) => format!("app “{}” ({})", app.name, describe_access(&app.access)),
            None => format!(
                "no app matches, so auth.forward.default_policy ({}) applies",
                match default_policy {
                    DefaultPolicy::Deny => "deny",
                    DefaultPolicy::SignedIn => "signed_in",
                }
            ),
        };
        let outcome = match self.decision {
            Decision::Allow => "allowed".to_owned(),
            Decision::SignIn => "sign-in required".to_owned(),
            Decision::Deny(Denied::NotListed) => "denied: not listed by role, group or name".into(),
            Decision::Deny(Denied::Status(s)) => format!("denied: the account is {s}"),
            Decision::Deny(Denied::ReadOnly) => {
                "denied: viewers may only read (GET, HEAD, OPTIONS) this app".into()
            }
            Decision::Deny(Denied::NoApp) => "denied: no app is configured for this address".into(),
        };
        format!("{outcome} — {rule}")
    }
}

fn describe_access(access: &Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::SignedIn => "any signed-in account".into(),
        Access::Restricted {
            roles,
            groups,
            users,
        } => {
            let count = |n: usize, one: &str, many: &str| match n {
                0 => None,
                1 => Some(format!("1 {one}")),
                n => Some(format!("{n} {many}")),
            };
            let roles = (!roles.is_empty()).then(|| {
                let names = roles.iter().map(|r| r.as_str()).collect::<Vec<_>>();
                let word = if names.len() == 1 { "role" } else { "roles" };
                format!("{word} {}", names.join(", "))
            });
            let parts: Vec<String> = [
                roles,
                count(groups.len(), "group", "groups"),
                count(users.len(), "person by name", "people by name"),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!("open to {}", parts.join(" or "))
        }
    }
}

impl AppTable {
    /// Decides `request` for `who` (`None`: anonymous).
    pub fn decide<'a>(&'a self, request: Protected<'_>, who: Option<Subject<'_>>) -> Verdict<'a> {
        let app = self.find(request.host, request.path);
        let decision = decision(app, self.default_policy(), request, who);
        Verdict { decision, app }
    }
}

fn decision(
    app: Option<&App>,
    default_policy: DefaultPolicy,
    request: Protected<'_>,
    who: Option<Subject<'_>>,
) -> Decision {
    let access = match app {
        Some(app) => &app.access,
        None if default_policy == DefaultPolicy::Deny => return Decision::Deny(Denied::NoApp),
        None => &Access::SignedIn,
    };
    if *access == Access::Public {
        return Decision::Allow;
    }
    let Some(who) = who else {
        return Decision::SignIn;
    };
    if who.status != Status::Active {
        return Decision::Deny(Denied::Status(who.status));
    }
    let listed = match access {
        Access::Public | Access::SignedIn => true,
        Access::Restricted {
            roles,
            groups,
            users,
        } => {
            roles.contains(&who.role)
                || users.contains(&who.user_id)
                || groups.iter().any(|g| who.groups.contains(g))
        }
    };
    if !listed {
        return Decision::Deny(Denied::NotListed);
    }
    let reads = matches!(request.method, "GET" | "HEAD" | "OPTIONS");
    if who.role == Role::Viewer && app.is_some_and(|a| a.viewers_read_only) && !reads {
        return Decision::Deny(Denied::ReadOnly);
    }
    Decision::Allow
}
