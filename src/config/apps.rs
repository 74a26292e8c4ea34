//! `[[apps]]` (apps declared in the configuration file, read-only in the UI) and
//! `[auth.forward]` (what forward-auth does with a request no app matches).

use serde::{Deserialize, Serialize};

use crate::domain::Role;
use crate::domain::apps::{AccessKind, AppInput, DefaultPolicy, GroupRef, HostPattern, PathPrefix};
use crate::domain::groups::GroupName;

/// `[auth.forward]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// A request that matches no app: `deny` (default) or `signed_in`.
    pub default_policy: DefaultPolicy,
}

/// One `[[apps]]` entry. Groups and users are named; groups that do not exist yet are
/// created at start-up, unknown users are logged and left out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub name: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub icon: Option<String>,
    pub hosts: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// `public`, `signed_in` or `restricted`.
    pub access: AccessKind,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub viewers_read_only: bool,
}

impl AppConfig {
    /// Checks what can be checked without the database; the message names the app.
    pub fn check(&self) -> Result<(), String> {
        let at = |m: String| format!("apps: {:?}: {m}", self.name);
        if self.name.trim().is_empty() || self.name.chars().count() > 64 {
            return Err(at("name must have 1 to 64 characters".into()));
        }
        if self.hosts.is_empty() {
            return Err(at("hosts: name at least one host".into()));
        }
        for h in &self.hosts {
            HostPattern::parse(h).map_err(|e| at(format!("hosts: {e}")))?;
        }
        for p in &self.paths {
            PathPrefix::parse(p).map_err(|e| at(format!("paths: {e}")))?;
        }
        let lists = !self.roles.is_empty() || !self.groups.is_empty() || !self.users.is_empty();
        match self.access {
            AccessKind::Restricted if !lists => Err(at(
                "access = \"restricted\" needs roles, groups or users (or use \"signed_in\")"
                    .into(),
            )),
            AccessKind::Public | AccessKind::SignedIn if lists => Err(at(format!(
                "roles, groups and users apply only to access = \"restricted\" (this app is {:?})",
                self.access.as_str()
            ))),
            // The rest (url, icon, group names…) as `/admin/apps` checks them, so
            // `hallpass check-config` refuses what the start-up sync would.
            _ => {
                for g in &self.groups {
                    GroupName::parse(g).map_err(|e| at(format!("groups: {e}")))?;
                }
                self.input().check().map(drop).map_err(|e| at(e.summary()))
            }
        }
    }

    /// The entry as the app form would submit it.
    pub fn input(&self) -> AppInput {
        AppInput {
            name: self.name.clone(),
            url: self.url.clone().unwrap_or_default(),
            icon: self.icon.clone().unwrap_or_default(),
            hosts: self.hosts.clone(),
            paths: self.paths.clone(),
            access: self.access.as_str().to_owned(),
            roles: self.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            groups: self.groups.iter().cloned().map(GroupRef::Name).collect(),
            users: self.users.clone(),
            viewers_read_only: self.viewers_read_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grafana() -> AppConfig {
        AppConfig {
            name: "Grafana".into(),
            url: Some("https://grafana.example.com/".into()),
            icon: Some("GF".into()),
            hosts: vec!["grafana.example.com".into()],
            paths: vec![],
            access: AccessKind::Restricted,
            roles: vec![Role::Admin],
            groups: vec!["family".into()],
            users: vec![],
            viewers_read_only: false,
        }
    }

    #[test]
    fn check_config_refuses_what_the_app_form_refuses() {
        assert_eq!(grafana().check(), Ok(()));
        let mut bad = grafana();
        bad.url = Some("ftp://grafana.example.com".into());
        assert!(bad.check().unwrap_err().contains("http"), "a portal link");
        let mut bad = grafana();
        bad.icon = Some("//evil.example/x.png".into());
        assert!(bad.check().unwrap_err().starts_with("apps: \"Grafana\": "));
        let mut bad = grafana();
        bad.groups = vec!["a,b".into()];
        assert!(bad.check().unwrap_err().contains("groups: "));
    }
}
