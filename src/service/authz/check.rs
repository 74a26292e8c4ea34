//! One forward-auth decision: the caller, the rules, the answer.

use std::net::IpAddr;

use super::{Authz, Caller, Credentials, Person, Via};
use crate::config::Config;
use crate::db::DbPool;
use crate::domain::apps::{Decision, Protected, Subject};
use crate::secret::ServerSecret;
use crate::service::ServiceError;
use crate::service::rate_limit::RateLimiter;

/// What a decision needs besides the request.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub db: &'a DbPool,
    pub config: &'a Config,
    pub secret: &'a ServerSecret,
    pub keys: &'a crate::service::api_keys::KeyCache,
    pub limiter: &'a RateLimiter,
    /// `HALLPASS_AUTH_BYPASS`: every request is this admin.
    pub dev_admin: Option<i64>,
}

/// The answer for the proxy.
#[derive(Debug, Clone)]
pub struct Checked {
    pub decision: Decision,
    /// The app whose rule decided (`None`: the default policy).
    pub app: Option<String>,
    /// Who the upstream app is told about (only when allowed and signed in).
    pub person: Option<Person>,
    /// Who was refused (for the 403 page: "signed in as …").
    pub refused: Option<String>,
    pub via: Option<Via>,
}

impl Authz {
    /// Decides whether `request` may pass. Errors: an invalid API key
    /// ([`crate::service::Refusal::InvalidApiKey`]), rate limits, the database.
    pub async fn check(
        &self,
        ctx: Ctx<'_>,
        credentials: Credentials<'_>,
        request: Protected<'_>,
        ip: IpAddr,
    ) -> Result<Checked, ServiceError> {
        let stamp = self.db.change_stamp().await;
        let caller = self.caller(&ctx, credentials, stamp, ip).await?;
        let table = self.table_at(ctx.db, stamp).await?;
        let (subject, group_ids) = match &caller {
            Caller::Anonymous => (None, Vec::new()),
            Caller::Person(p, _) => (Some(&p.user), p.groups.iter().map(|g| g.0).collect()),
            Caller::Ended(user) => (Some(user), Vec::new()),
        };
        let subject = subject.map(|u| Subject {
            user_id: u.id,
            role: u.role,
            status: u.status,
            groups: &group_ids,
        });
        let verdict = table.decide(request, subject);
        let app = verdict.app.map(|a| a.name.clone());
        let decision = verdict.decision;
        let refused = match (&caller, decision) {
            (_, Decision::Allow | Decision::SignIn) => None,
            (Caller::Person(p, _), _) => Some(p.user.username.clone()),
            (Caller::Ended(u), _) => Some(u.username.clone()),
            (Caller::Anonymous, _) => None,
        };
        let (person, via) = match caller {
            Caller::Person(p, via) if decision == Decision::Allow => (Some(p), Some(via)),
            Caller::Person(_, via) => (None, Some(via)),
            _ => (None, None),
        };
        Ok(Checked {
            decision,
            app,
            person,
            refused,
            via,
        })
    }
}
