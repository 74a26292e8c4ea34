//! Forward-auth: identities vouched for by an authenticating reverse proxy (Authelia,
//! Authentik's outpost, oauth2-proxy) in request headers.

use super::Role;

/// The header names of a well-known forward-auth proxy: `authelia`, `authentik` (the
/// Authentik outpost) or `oauth2-proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Authelia,
    Authentik,
    Oauth2Proxy,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Authelia, Preset::Authentik, Preset::Oauth2Proxy];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Authelia => "authelia",
            Preset::Authentik => "authentik",
            Preset::Oauth2Proxy => "oauth2-proxy",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Preset::Authelia => "Authelia",
            Preset::Authentik => "Authentik outpost",
            Preset::Oauth2Proxy => "oauth2-proxy",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(raw.trim()))
    }

    /// What an admin chose: a preset's name, or `""`/`config` for the configured headers
    /// (`None`). The admin page and the API read the choice the same way.
    pub fn choice(raw: &str) -> Result<Option<Self>, String> {
        match raw.trim() {
            "" | "config" => Ok(None),
            other => Preset::parse(other).map(Some).ok_or_else(|| {
                format!(
                    "Unknown preset \"{}\": use authelia, authentik, oauth2-proxy or config.",
                    super::sso::clean_claim(other, 40).unwrap_or_default()
                )
            }),
        }
    }

    pub fn headers(self) -> HeaderNames {
        let h = |u: &str, e: &str, n: &str, g: &str| HeaderNames {
            user: u.into(),
            email: e.into(),
            name: n.into(),
            groups: g.into(),
        };
        match self {
            Preset::Authelia => h(
                "Remote-User",
                "Remote-Email",
                "Remote-Name",
                "Remote-Groups",
            ),
            Preset::Authentik => h(
                "X-authentik-username",
                "X-authentik-email",
                "X-authentik-name",
                "X-authentik-groups",
            ),
            Preset::Oauth2Proxy => h(
                "X-Forwarded-Preferred-Username",
                "X-Forwarded-Email",
                "X-Forwarded-User",
                "X-Forwarded-Groups",
            ),
        }
    }
}

/// Which request headers carry the identity (header names, as configured or as a preset
/// names them; an empty string: that header is not read).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HeaderNames {
    /// The user name (what a proxy link's `proxy_user` matches), e.g. `Remote-User`.
    pub user: String,
    /// The email address.
    pub email: String,
    /// The display name.
    pub name: String,
    /// The groups, comma- or pipe-separated.
    pub groups: String,
}

/// What the proxy said about the caller, cleaned.
#[derive(Debug, Clone)]
pub struct ProxyIdentity {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// Groups as the proxies send them: comma-separated (Authelia, oauth2-proxy) or
/// pipe-separated (Authentik).
pub fn parse_groups(raw: &str) -> Vec<String> {
    raw.split([',', '|'])
        .filter_map(|g| super::sso::clean_claim(g, 100))
        .take(200)
        .collect()
}

/// The role group membership maps to, when any mapping is configured: admin groups win
/// over viewer groups; anyone else is a `user`. `None`: no mapping configured.
pub fn role_for_groups(groups: &[String], admin: &[String], viewer: &[String]) -> Option<Role> {
    if admin.is_empty() && viewer.is_empty() {
        return None;
    }
    let member = |set: &[String]| groups.iter().any(|g| set.iter().any(|s| s == g));
    Some(if member(admin) {
        Role::Admin
    } else if member(viewer) {
        Role::Viewer
    } else {
        Role::User
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API sends a preset by its serde name, the pages and the configuration by
    /// `as_str`: one name each.
    #[test]
    fn a_preset_is_sent_by_the_name_it_is_chosen_by() {
        for p in Preset::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
    }

    #[test]
    fn a_preset_choice_is_a_preset_or_the_configuration() {
        assert_eq!(Preset::choice(""), Ok(None));
        assert_eq!(Preset::choice(" config "), Ok(None));
        assert_eq!(
            Preset::choice("OAuth2-Proxy"),
            Ok(Some(Preset::Oauth2Proxy))
        );
        let e = Preset::choice("bogus\u{0}").unwrap_err();
        assert!(e.starts_with("Unknown preset \"bogus\""), "{e}");
    }

    #[test]
    fn groups_split_on_commas_and_pipes() {
        assert_eq!(
            parse_groups("admins, family|dev\u{0}s,,"),
            ["admins", "family", "devs"]
        );
    }

    #[test]
    fn group_mapping() {
        let g = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(role_for_groups(&g(&["a"]), &[], &[]), None);
        assert_eq!(
            role_for_groups(&g(&["ops", "view"]), &g(&["ops"]), &g(&["view"])),
            Some(Role::Admin)
        );
        assert_eq!(
            role_for_groups(&g(&["view"]), &g(&["ops"]), &g(&["view"])),
            Some(Role::Viewer)
        );
        assert_eq!(
            role_for_groups(&g(&[]), &g(&["ops"]), &[]),
            Some(Role::User)
        );
    }

    #[test]
    fn presets_name_their_headers() {
        assert_eq!(Preset::Authentik.headers().user, "X-authentik-username");
        assert_eq!(Preset::parse("OAUTH2-proxy"), Some(Preset::Oauth2Proxy));
        assert_eq!(Preset::parse("nginx"), None);
    }
}
