//! The lockout view (`/admin/lockouts`, `/api/admin/lockouts`): the counters at or past
//! their limit, and lifting one (audited). On SQLite the counters are this process's; on
//! PostgreSQL they are the shared ones of every process, and a lift reaches every process
//! at its next attempt (`shared::apply_lifts`).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::counters::MemLocked;
use super::shard::Key;
use super::{Action, RateLimiter};
use crate::db::rate_limits::Locked;
use crate::domain::audit::AuditAction;
use crate::service::{Actor, Missing, Refusal, ServiceError, audit};

/// A counter at or past its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    /// Names the counter in a lift (opaque).
    pub id: String,
    /// What is limited: `login`, `register`, `password_change`, `sso_link`, `api_key`, `setup`,
    /// `second_factor`, `metrics_token`.
    pub action: &'static str,
    /// The client address counted (IPv6: the first address of its /64).
    pub client: String,
    /// Whether the counter is an account's (account + address) rather than the address's.
    pub per_account: bool,
    /// The attempted account name (as typed, lower-cased), when known.
    pub account: Option<String>,
    pub failures: u32,
    pub limit: u32,
    /// When the window ends and attempts are allowed again (unix seconds).
    pub ends_at: i64,
}

/// Opaque ids: the counter's action, client and account key, hex-encoded so that any
/// client address (IPv6 has colons) fits a path segment.
fn encode_id(action: &str, client: &str, account: &str) -> String {
    format!("{action}\n{client}\n{account}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_id(id: &str) -> Option<(Action, String, String)> {
    if !id.len().is_multiple_of(2) || id.len() > 600 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(id.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '\n');
    let action = Action::from_name(parts.next()?)?;
    let client = parts.next()?.to_owned();
    let account = parts.next()?.to_owned();
    Some((action, client, account))
}

fn ends_at(left: Duration) -> i64 {
    let secs = i64::try_from(left.as_secs()).unwrap_or(0) + i64::from(left.subsec_nanos() > 0);
    time::OffsetDateTime::now_utc().unix_timestamp() + secs
}

fn from_memory(m: MemLocked) -> Lockout {
    let client = m.key.ip.to_string();
    let account = m
        .key
        .account
        .map(|h| format!("{h:016x}"))
        .unwrap_or_default();
    Lockout {
        id: encode_id(m.key.action.name(), &client, &account),
        action: m.key.action.name(),
        client,
        per_account: m.key.account.is_some(),
        account: m.label,
        failures: m.failures,
        limit: m.limit,
        ends_at: ends_at(m.left),
    }
}

impl RateLimiter {
    fn shared_lockout(&self, l: Locked) -> Option<Lockout> {
        let (action, client, account) = l.counter;
        let action = Action::from_name(&action)?;
        let counters = &self.inner.counters;
        let per_account = !account.is_empty();
        let limit = if per_account {
            counters.max_account
        } else {
            counters.max_ip
        };
        let left = counters
            .window
            .saturating_sub(Duration::from_millis(l.count.age_ms));
        Some(Lockout {
            id: encode_id(action.name(), &client, &account),
            action: action.name(),
            client,
            per_account,
            account: l.label,
            failures: l.count.failures,
            limit,
            ends_at: ends_at(left),
        })
    }

    /// Every counter at or past its limit, the soonest to end first.
    pub async fn lockouts(&self) -> Result<Vec<Lockout>, ServiceError> {
        if !self.inner.enabled {
            return Ok(Vec::new());
        }
        match &self.inner.shared {
            Some(shared) => {
                let rows = shared.locked().await?;
                Ok(rows
                    .into_iter()
                    .filter_map(|l| self.shared_lockout(l))
                    .collect())
            }
            None => Ok(self
                .inner
                .counters
                .locked(Instant::now())
                .into_iter()
                .map(from_memory)
                .collect()),
        }
    }

    /// Lifts the lockout `id`: its counter starts afresh, in every process (audited as
    /// `rate_limit.lift`). A counter that is gone already is [`Missing::Lockout`].
    pub async fn lift(&self, actor: Actor, id: &str) -> Result<Lockout, ServiceError> {
        let missing = || ServiceError::Refused(Refusal::NotFound(Missing::Lockout));
        let (action, client, account) = decode_id(id).ok_or_else(missing)?;
        let ip: IpAddr = client.parse().map_err(|_| missing())?;
        let lifted = match &self.inner.shared {
            Some(shared) => {
                let row = shared
                    .lift(action.name(), client.clone(), account.clone())
                    .await?
                    .ok_or_else(missing)?;
                // This process at once; the others when the notification reaches them.
                let name = row.label.clone();
                if account.is_empty() || name.is_some() {
                    self.inner
                        .counters
                        .forget_lifted(action, ip, name.as_deref(), Instant::now());
                }
                self.shared_lockout(row).ok_or_else(missing)?
            }
            None => {
                let account = if account.is_empty() {
                    None
                } else {
                    Some(u64::from_str_radix(&account, 16).map_err(|_| missing())?)
                };
                let key = Key {
                    action,
                    ip,
                    account,
                };
                let m = self
                    .inner
                    .counters
                    .lift(&key, Instant::now())
                    .ok_or_else(missing)?;
                from_memory(m)
            }
        };
        let detail = format!(
            "action={} client={} failures={} limit={}",
            lifted.action, lifted.client, lifted.failures, lifted.limit
        );
        let target = lifted
            .account
            .clone()
            .unwrap_or_else(|| lifted.client.clone());
        self.inner
            .db
            .run(move |c| {
                audit::record(
                    c,
                    &actor,
                    AuditAction::RateLimitLift,
                    Some(&target),
                    Some(&detail),
                )
            })
            .await?;
        Ok(lifted)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{config, login};
    use super::super::{MAX_ENTRIES, Verdict, counters::Counters};
    use super::*;

    #[test]
    fn ids_round_trip_and_garbage_is_refused() {
        let id = encode_id("login", "2001:db8::", "00ff");
        assert_eq!(
            decode_id(&id),
            Some((Action::Login, "2001:db8::".to_owned(), "00ff".to_owned()))
        );
        assert_eq!(decode_id("zz"), None);
        assert_eq!(decode_id("abc"), None);
        assert_eq!(decode_id(&encode_id("nonsense", "x", "")), None);
    }

    #[test]
    fn counters_at_their_limit_are_listed_with_the_account_and_lifted() {
        let c = Counters::new(&config(2, 3), MAX_ENTRIES);
        let t = Instant::now();
        let fail = |name: &str| {
            let a = login("10.0.0.1", name);
            if let Ok(ticket) = c.begin(&a, t) {
                c.settle(&ticket, Verdict::Failed, t);
            }
        };
        fail("Alice");
        assert!(c.locked(t).is_empty(), "below every limit");
        fail("alice");
        let locked: Vec<Lockout> = c.locked(t).into_iter().map(from_memory).collect();
        assert_eq!(locked.len(), 1, "{locked:?}");
        assert_eq!(locked[0].account.as_deref(), Some("alice"));
        assert!(locked[0].per_account);
        assert_eq!((locked[0].failures, locked[0].limit), (2, 2));
        fail("bob");
        let locked: Vec<Lockout> = c.locked(t).into_iter().map(from_memory).collect();
        assert_eq!(locked.len(), 2, "the address is at its limit too");
        // Lifting the account's counter lets alice try again; the address stays locked.
        let (action, client, account) =
            decode_id(&locked[0].id).unwrap_or((Action::Setup, String::new(), String::new()));
        let key = Key {
            action,
            ip: client.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            account: u64::from_str_radix(&account, 16).ok(),
        };
        assert!(c.lift(&key, t).is_some());
        assert!(c.lift(&key, t).is_none(), "lifted once");
        assert_eq!(c.locked(t).len(), 1);
    }
}
