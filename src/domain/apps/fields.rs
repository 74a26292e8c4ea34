//! An app rule as an admin types it (the form on `/admin/apps`, the JSON API), checked field
//! by field with messages for each. Group and user names are resolved to ids by the service,
//! inside the transaction that writes the app (they need the database); everything else is
//! checked here, so both front ends share the rules and the words.

use serde::{Deserialize, Serialize};

use super::{AccessKind, HostPattern, PathPrefix};
use crate::domain::{FieldErrors, Role};

/// Longest app name, in characters.
pub const NAME_MAX: usize = 64;
/// Longest text icon (an emoji or a few letters), in characters.
pub const ICON_TEXT_MAX: usize = 16;
/// Longest portal link or icon URL.
pub const URL_MAX: usize = 2048;
/// Most host patterns, path prefixes, groups or users one app may list: far beyond any real
/// rule, low enough that one request cannot make the rule table (kept in every process) huge.
pub const LIST_MAX: usize = 100;

/// A group named in a rule: by name (forms, JSON strings) or by id (JSON numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum GroupRef {
    Id(i64),
    Name(String),
}

/// An app as submitted, before any check. Lists are already split into entries.
#[derive(Debug, Clone, Default)]
pub struct AppInput {
    pub name: String,
    pub url: String,
    pub icon: String,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    /// `public`, `signed_in` or `restricted`.
    pub access: String,
    pub roles: Vec<String>,
    pub groups: Vec<GroupRef>,
    /// Usernames.
    pub users: Vec<String>,
    pub viewers_read_only: bool,
}

/// The checked fields of an app, but for its groups and users (still named in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDraft {
    /// Trimmed.
    pub name: String,
    pub url: Option<String>,
    pub icon: Option<String>,
    pub hosts: Vec<HostPattern>,
    pub paths: Vec<PathPrefix>,
    pub kind: AccessKind,
    pub roles: Vec<Role>,
    pub viewers_read_only: bool,
}

/// Splits a form's text area into entries: one per line, and also at commas when `commas`
/// (host patterns, group names and usernames cannot contain one; a path prefix can).
pub fn split_lines(text: &str, commas: bool) -> Vec<String> {
    text.split(|c| c == '\n' || (commas && c == ','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl AppInput {
    /// Checks every field that needs no database, with one message per problem under the
    /// field's name (all problems at once, so a form shows them together).
    pub fn check(&self) -> Result<AppDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", check_name(&self.name));
        let url = errors.check("url", check_url(&self.url));
        let icon = errors.check("icon", check_icon(&self.icon));
        let hosts = errors.check("hosts", check_hosts(&self.hosts));
        let paths = errors.check("paths", check_paths(&self.paths));
        let kind = errors.check(
            "access",
            self.access.trim().parse::<AccessKind>().map_err(|_| {
                "Choose who may open the app: public, signed_in or restricted.".to_owned()
            }),
        );
        let roles = errors.check("roles", check_roles(&self.roles));
        let named = self.groups.iter().any(|g| !is_blank(g))
            || self.users.iter().any(|u| !u.trim().is_empty());
        if let (Some(kind), Some(roles)) = (kind, &roles) {
            let listed = !roles.is_empty() || named;
            match kind {
                AccessKind::Restricted if !listed => errors.add(
                    "access",
                    "A restricted app needs at least one role, group or user (or choose “any signed-in account”).",
                ),
                AccessKind::Public | AccessKind::SignedIn if listed => errors.add(
                    "access",
                    "Roles, groups and users apply only to a restricted app: choose “restricted”, or clear them.",
                ),
                _ => {}
            }
        }
        if self.groups.len() > LIST_MAX {
            errors.add("groups", format!("At most {LIST_MAX} groups."));
        }
        if self.users.len() > LIST_MAX {
            errors.add("users", format!("At most {LIST_MAX} users."));
        }
        match (name, url, icon, hosts, paths, kind, roles) {
            (
                Some(name),
                Some(url),
                Some(icon),
                Some(hosts),
                Some(paths),
                Some(kind),
                Some(roles),
            ) if errors.is_empty() => Ok(AppDraft {
                name,
                url,
                icon,
                hosts,
                paths,
                kind,
                roles,
                viewers_read_only: self.viewers_read_only,
            }),
            _ => Err(errors),
        }
    }
}

fn is_blank(g: &GroupRef) -> bool {
    matches!(g, GroupRef::Name(n) if n.trim().is_empty())
}

fn check_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Give the app a name.".into());
    }
    if name.chars().count() > NAME_MAX {
        return Err(format!("An app name has at most {NAME_MAX} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err("An app name cannot contain control characters.".into());
    }
    Ok(name.to_owned())
}

/// An absolute http(s) URL with a host, or `None` for an empty field.
fn web_url(raw: &str) -> Option<Result<String, ()>> {
    let s = raw.trim();
    if s.is_empty() {
        return None;
    }
    let ok = s.len() <= URL_MAX
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(s).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
    Some(if ok { Ok(s.to_owned()) } else { Err(()) })
}

fn check_url(raw: &str) -> Result<Option<String>, String> {
    web_url(raw).transpose().map_err(|()| {
        "The link must be a full http:// or https:// address (or leave it empty: the app is then not on the portal).".to_owned()
    })
}

fn check_icon(raw: &str) -> Result<Option<String>, String> {
    let s = raw.trim();
    let bad = || {
        format!(
            "An icon is an emoji or up to {ICON_TEXT_MAX} characters of text, or the address of an image (http://, https:// or a path starting with /)."
        )
    };
    if s.starts_with("http://") || s.starts_with("https://") {
        return web_url(s).transpose().map_err(|()| bad());
    }
    if let Some(rest) = s.strip_prefix('/') {
        // `//host/x.png` would load from another host with no scheme said: refuse it.
        let ok = !rest.starts_with('/')
            && s.len() <= URL_MAX
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '\\');
        return if ok {
            Ok(Some(s.to_owned()))
        } else {
            Err(bad())
        };
    }
    if s.chars().count() > ICON_TEXT_MAX || s.chars().any(char::is_control) || s.contains("://") {
        return Err(bad());
    }
    Ok((!s.is_empty()).then(|| s.to_owned()))
}

fn check_hosts(raw: &[String]) -> Result<Vec<HostPattern>, String> {
    let mut out: Vec<HostPattern> = Vec::new();
    for h in raw.iter().filter(|h| !h.trim().is_empty()) {
        let p = HostPattern::parse(h)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        return Err(
            "Name at least one host the app answers on, such as app.example.com or *.example.com."
                .into(),
        );
    }
    if out.len() > LIST_MAX {
        return Err(format!("At most {LIST_MAX} host patterns."));
    }
    Ok(out)
}

fn check_paths(raw: &[String]) -> Result<Vec<PathPrefix>, String> {
    let mut out: Vec<PathPrefix> = Vec::new();
    for p in raw.iter().filter(|p| !p.trim().is_empty()) {
        let p = PathPrefix::parse(p)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.len() > LIST_MAX {
        return Err(format!("At most {LIST_MAX} path prefixes."));
    }
    Ok(out)
}

fn check_roles(raw: &[String]) -> Result<Vec<Role>, String> {
    let mut out: Vec<Role> = Vec::new();
    for r in raw.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        let role = r
            .parse::<Role>()
            .map_err(|_| format!("Unknown role “{r}”: the roles are admin, user and viewer."))?;
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AppInput {
        AppInput {
            name: " Grafana ".into(),
            url: "https://grafana.example.com/".into(),
            icon: "📈".into(),
            hosts: vec!["grafana.example.com".into(), "Grafana.example.com".into()],
            paths: vec![],
            access: "signed_in".into(),
            ..AppInput::default()
        }
    }

    fn errors_of(i: &AppInput) -> FieldErrors {
        i.check().expect_err("accepted")
    }

    #[test]
    fn a_good_app_is_checked_and_normalised() {
        let d = input().check().unwrap();
        assert_eq!(d.name, "Grafana");
        assert_eq!(d.hosts.len(), 1, "the same host twice is kept once");
        assert_eq!(d.icon.as_deref(), Some("📈"));
        assert_eq!(d.kind, AccessKind::SignedIn);
    }

    #[test]
    fn each_bad_field_gets_its_own_message() {
        let bad = AppInput {
            name: "x".repeat(65),
            url: "ftp://files.example.com".into(),
            icon: "an icon that is far too long".into(),
            hosts: vec![],
            paths: vec!["admin".into()],
            access: "everyone".into(),
            roles: vec!["root".into()],
            ..AppInput::default()
        };
        let e = errors_of(&bad);
        for field in ["name", "url", "icon", "hosts", "paths", "access", "roles"] {
            assert!(e.get(field).is_some(), "no message for {field}: {e:?}");
        }
    }

    #[test]
    fn icons_are_short_text_or_image_addresses() {
        for ok in [
            "",
            "📈",
            "GF",
            "https://cdn.example.com/i.png",
            "/static/icon.svg",
        ] {
            assert!(check_icon(ok).is_ok(), "{ok:?} refused");
        }
        for bad in [
            "//evil.example/x.png",
            "javascript:alert(1)x",
            "data:image/png;base64,AAAA",
            "/a b.png",
            "https://",
            "seventeen letters",
        ] {
            assert!(check_icon(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn restricted_needs_a_list_and_the_others_refuse_one() {
        let mut i = input();
        i.access = "restricted".into();
        assert!(errors_of(&i).get("access").is_some());
        i.groups = vec![GroupRef::Name("family".into())];
        assert!(i.check().is_ok());
        i.access = "public".into();
        assert!(errors_of(&i).get("access").is_some());
    }

    #[test]
    fn text_areas_split_into_entries() {
        assert_eq!(
            split_lines(" a.example.com,b.example.com\r\n\n c.example.com ", true),
            ["a.example.com", "b.example.com", "c.example.com"]
        );
        assert_eq!(split_lines("/a,b\n/c", false), ["/a,b", "/c"]);
    }
}
