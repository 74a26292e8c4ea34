//! Apps Hallpass guards through forward-auth, and the rule that decides who may open them.
//! Pure: the service loads the rules into an [`AppTable`] and asks [`AppTable::decide`] on
//! every forward-auth request, so the decision itself costs no database work.

mod decide;
mod fields;
mod pattern;
mod tester;

pub use decide::{Decision, Denied, Protected, Subject, Verdict};
pub use fields::{AppDraft, AppInput, GroupRef, split_lines};
pub use pattern::{HostPattern, PathPrefix, normalise_host};
pub use tester::{MatchedRule, RuleTest, TestRequest, matched_host, matched_path};

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Role;

/// Who may open an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No sign-in: everyone, anonymous included.
    Public,
    /// Any active account.
    SignedIn,
    /// Active accounts with one of the roles, in one of the groups (ids), or listed (user ids).
    Restricted {
        roles: Vec<Role>,
        groups: Vec<i64>,
        users: Vec<i64>,
    },
}

/// Who may open an app: `public` (everyone, signed in or not), `signed_in` (any active
/// account) or `restricted` (active accounts with one of its roles, in one of its groups,
/// or listed by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessKind {
    Public,
    SignedIn,
    Restricted,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Public => "public",
            AccessKind::SignedIn => "signed_in",
            AccessKind::Restricted => "restricted",
        }
    }
}

impl FromStr for AccessKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public" => Ok(AccessKind::Public),
            "signed_in" => Ok(AccessKind::SignedIn),
            "restricted" => Ok(AccessKind::Restricted),
            other => Err(format!(
                "unknown access {other:?} (expected public, signed_in or restricted)"
            )),
        }
    }
}

impl fmt::Display for AccessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Access {
    pub fn kind(&self) -> AccessKind {
        match self {
            Access::Public => AccessKind::Public,
            Access::SignedIn => AccessKind::SignedIn,
            Access::Restricted { .. } => AccessKind::Restricted,
        }
    }
}

/// Where an app's rule comes from: `ui` (managed on `/admin/apps` or through the JSON API)
/// or `file` (`[[apps]]` in the configuration file: read-only, changes are refused with 409).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppSource {
    /// Managed on `/admin/apps` or through the JSON API.
    Ui,
    /// `[[apps]]` in the configuration file: read-only in the UI.
    File,
}

impl AppSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AppSource::Ui => "ui",
            AppSource::File => "file",
        }
    }
}

impl FromStr for AppSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ui" => Ok(AppSource::Ui),
            "file" => Ok(AppSource::File),
            other => Err(format!("unknown app source {other:?}")),
        }
    }
}

/// One guarded app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: i64,
    pub name: String,
    /// Portal link.
    pub url: Option<String>,
    /// Portal icon: an emoji, or an image URL.
    pub icon: Option<String>,
    /// At least one.
    pub hosts: Vec<HostPattern>,
    /// Empty: every path of its hosts.
    pub paths: Vec<PathPrefix>,
    pub access: Access,
    /// Accounts with the `viewer` role may only GET, HEAD and OPTIONS.
    pub viewers_read_only: bool,
    pub source: AppSource,
}

/// What applies to a request no app matches (`auth.forward.default_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultPolicy {
    /// Nobody: an unknown host is refused even to admins.
    #[default]
    Deny,
    /// Any active account.
    SignedIn,
}

/// Every app rule, indexed for the hot path: exact hosts in a map, wildcards by domain, so
/// finding the candidates for a host costs a few hash lookups whatever the number of apps.
#[derive(Debug, Clone, Default)]
pub struct AppTable {
    apps: Vec<App>,
    exact: HashMap<String, Vec<usize>>,
    wildcard: HashMap<String, Vec<usize>>,
    default_policy: DefaultPolicy,
}

impl AppTable {
    pub fn new(apps: Vec<App>, default_policy: DefaultPolicy) -> AppTable {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            for h in &app.hosts {
                let map = if h.is_wildcard() {
                    &mut wildcard
                } else {
                    &mut exact
                };
                let slot = map.entry(h.host().to_owned()).or_default();
                if !slot.contains(&i) {
                    slot.push(i);
                }
            }
        }
        AppTable {
            apps,
            exact,
            wildcard,
            default_policy,
        }
    }

    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    pub fn default_policy(&self) -> DefaultPolicy {
        self.default_policy
    }

    /// Whether any app answers on `host` (lower case, no port): the sign-in page's return
    /// address may point there.
    pub fn knows_host(&self, host: &str) -> bool {
        self.exact.contains_key(host) || self.wildcard_candidates(host).next().is_some()
    }

    /// The app whose rule applies to `host` + `path`: the most specific host (exact over
    /// wildcard, longer wildcard domain over shorter), then the longest matching path prefix
    /// (an app without prefixes matches every path, least specifically); ties go to the
    /// lower id, so the answer never depends on load order.
    pub fn find(&self, host: &str, path: &str) -> Option<&App> {
        let exact = self.exact.get(host).into_iter().flatten().copied();
        let mut best: Option<(usize, usize, i64, usize)> = None;
        for i in exact.chain(self.wildcard_candidates(host)) {
            let app = &self.apps[i];
            let Some(host_rank) = app
                .hosts
                .iter()
                .filter(|h| h.matches(host))
                .map(HostPattern::specificity)
                .max()
            else {
                continue;
            };
            let path_rank = if app.paths.is_empty() {
                Some(0)
            } else {
                app.paths
                    .iter()
                    .filter(|p| p.matches(path))
                    .map(|p| p.specificity())
                    .max()
            };
            let Some(path_rank) = path_rank else {
                continue;
            };
            let better = match best {
                None => true,
                Some((h, p, id, _)) => {
                    (host_rank, path_rank, std::cmp::Reverse(app.id))
                        > (h, p, std::cmp::Reverse(id))
                }
            };
            if better {
                best = Some((host_rank, path_rank, app.id, i));
            }
        }
        best.map(|(_, _, _, i)| &self.apps[i])
    }

    /// The wildcard entries whose domain is a proper suffix of `host` at a dot.
    fn wildcard_candidates<'a>(&'a self, host: &'a str) -> impl Iterator<Item = usize> + 'a {
        host.match_indices('.')
            .filter_map(move |(dot, _)| self.wildcard.get(&host[dot + 1..]))
            .flatten()
            .copied()
    }
}

#[cfg(test)]
mod tests;
