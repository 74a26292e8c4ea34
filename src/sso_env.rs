//! Single sign-on settings that come from the environment only: providers listed in
//! `HALLPASS_OIDC_PROVIDERS`, the break-glass `HALLPASS_SSO_DISABLE_OVERRIDE` and the
//! first-admin pin `HALLPASS_BOOTSTRAP_ADMIN`. They are not TOML keys (a provider list with
//! per-id variables does not map onto `SECTION__KEY`), and they are never written anywhere.

use secrecy::SecretString;

use crate::domain::sso::{
    self, BootstrapPin, Policy, Provider, Source, default_scopes, parse_claim_name, parse_issuer,
    parse_optional_claim_name, parse_provider_id, parse_scopes,
};

#[derive(Debug, Clone, Default)]
pub struct SsoEnv {
    pub providers: Vec<Provider>,
    /// Forces SSO off and the password form on, without touching stored settings.
    pub disable_override: bool,
    pub bootstrap_admin: Option<BootstrapPin>,
}

impl SsoEnv {
    /// Reads the variables through `get` (the process environment in production). An error
    /// names the variable and what is wrong with it.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut providers: Vec<Provider> = Vec::new();
        if let Some(list) = non_empty("HALLPASS_OIDC_PROVIDERS") {
            for raw_id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let id = parse_provider_id(&raw_id.to_ascii_lowercase())
                    .map_err(|m| format!("HALLPASS_OIDC_PROVIDERS: \"{raw_id}\": {m}"))?;
                if providers.iter().any(|p| p.id == id) {
                    return Err(format!("HALLPASS_OIDC_PROVIDERS: \"{id}\" is listed twice"));
                }
                let var = |suffix: &str| {
                    format!(
                        "HALLPASS_OIDC_{}_{suffix}",
                        id.to_ascii_uppercase().replace('-', "_")
                    )
                };
                let issuer_var = var("ISSUER");
                let issuer = non_empty(&issuer_var)
                    .ok_or_else(|| format!("{issuer_var} is not set (provider \"{id}\" is listed in HALLPASS_OIDC_PROVIDERS)"))?;
                let issuer = parse_issuer(&issuer).map_err(|m| format!("{issuer_var}: {m}"))?;
                let client_id_var = var("CLIENT_ID");
                let client_id = non_empty(&client_id_var)
                    .ok_or_else(|| format!("{client_id_var} is not set"))?
                    .trim()
                    .to_owned();
                // HALLPASS_OIDC_<ID>_CLIENT_SECRET_FILE wins over the variable.
                let client_secret = crate::secret::env_or_file(&get, &var("CLIENT_SECRET"))?
                    .map(|s| s.value.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .map(SecretString::from);
                let label = non_empty(&var("LABEL"))
                    .and_then(|l| sso::clean_claim(&l, 60))
                    .unwrap_or_else(|| id.clone());
                let scopes = match non_empty(&var("SCOPES")) {
                    Some(s) => parse_scopes(&s).map_err(|m| format!("{}: {m}", var("SCOPES")))?,
                    None => default_scopes(),
                };
                let claim = |suffix: &str, default: &str| -> Result<String, String> {
                    parse_claim_name(&non_empty(&var(suffix)).unwrap_or_default(), default)
                        .map_err(|m| format!("{}: {m}", var(suffix)))
                };
                let groups_claim =
                    parse_optional_claim_name(&non_empty(&var("GROUPS_CLAIM")).unwrap_or_default())
                        .map_err(|m| format!("{}: {m}", var("GROUPS_CLAIM")))?;
                let policy = Policy::parse(&non_empty(&var("POLICY")).unwrap_or_default())
                    .map_err(|m| format!("{}: {m}", var("POLICY")))?;
                providers.push(Provider {
                    subject_claim: claim("SUBJECT_CLAIM", "sub")?,
                    username_claim: claim("USERNAME_CLAIM", "preferred_username")?,
                    email_claim: claim("EMAIL_CLAIM", "email")?,
                    groups_claim,
                    id,
                    label,
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    policy,
                    enabled: true,
                    source: Source::Env,
                });
            }
        }
        let bootstrap_admin = non_empty("HALLPASS_BOOTSTRAP_ADMIN")
            .map(|raw| BootstrapPin::parse(&raw))
            .transpose()
            .map_err(|m| format!("HALLPASS_BOOTSTRAP_ADMIN: {m}"))?;
        Ok(Self {
            providers,
            disable_override: sso::env_flag(get("HALLPASS_SSO_DISABLE_OVERRIDE").as_deref()),
            bootstrap_admin,
        })
    }
}

impl SsoEnv {
    /// The environment's SSO settings as TOML comments for `check-config` (secrets redacted:
    /// only whether one is set).
    pub fn describe(&self) -> String {
        let mut out = String::from("\n# Single sign-on from the environment (HALLPASS_OIDC_*):\n");
        if self.providers.is_empty() {
            out.push_str("#   no providers\n");
        }
        for p in &self.providers {
            out.push_str(&format!(
                "#   {}: label={:?} issuer={} client_id={} client_secret={} scopes=\"{}\" claims=sub:{},username:{},email:{},groups:{} policy={}\n",
                p.id,
                p.label,
                p.issuer,
                p.client_id,
                if p.client_secret.is_some() { "[REDACTED]" } else { "none (public client)" },
                p.scopes.join(" "),
                p.subject_claim,
                p.username_claim,
                p.email_claim,
                p.groups_claim.as_deref().unwrap_or("(not read)"),
                p.policy
            ));
        }
        if let Some(pin) = &self.bootstrap_admin {
            out.push_str(&format!(
                "# HALLPASS_BOOTSTRAP_ADMIN={}:{}\n",
                pin.provider, pin.who
            ));
        }
        if self.disable_override {
            out.push_str("# HALLPASS_SSO_DISABLE_OVERRIDE is on: SSO login is forced off\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn providers_are_read_per_id_with_defaults() -> Result<(), String> {
        let e = SsoEnv::from_env(env(&[
            ("HALLPASS_OIDC_PROVIDERS", "authelia, pocket-id"),
            ("HALLPASS_OIDC_AUTHELIA_ISSUER", "https://auth.example.com"),
            ("HALLPASS_OIDC_AUTHELIA_CLIENT_ID", "hallpass"),
            ("HALLPASS_OIDC_AUTHELIA_CLIENT_SECRET", "s3cret"),
            ("HALLPASS_OIDC_AUTHELIA_POLICY", "Approve"),
            ("HALLPASS_OIDC_POCKET_ID_ISSUER", "https://id.example.com"),
            ("HALLPASS_OIDC_POCKET_ID_CLIENT_ID", "abc"),
            ("HALLPASS_OIDC_POCKET_ID_LABEL", "Pocket ID"),
            ("HALLPASS_OIDC_POCKET_ID_GROUPS_CLAIM", " groups "),
        ]))?;
        assert_eq!(e.providers.len(), 2);
        let a = &e.providers[0];
        assert_eq!((a.id.as_str(), a.policy), ("authelia", Policy::Approve));
        assert_eq!(a.scopes, default_scopes());
        assert_eq!(a.username_claim, "preferred_username");
        assert_eq!(a.groups_claim, None, "groups are not read unless asked");
        assert!(!a.is_public_client());
        let p = &e.providers[1];
        assert_eq!((p.label.as_str(), p.policy), ("Pocket ID", Policy::Link));
        assert!(p.is_public_client());
        assert_eq!(p.groups_claim.as_deref(), Some("groups"));
        assert!(!e.disable_override);
        let described = e.describe();
        assert!(
            !described.contains("s3cret") && described.contains("[REDACTED]"),
            "{described}"
        );
        Ok(())
    }

    #[test]
    fn a_listed_provider_without_issuer_names_the_variable() {
        let e = SsoEnv::from_env(env(&[("HALLPASS_OIDC_PROVIDERS", "kc")])).err();
        assert!(
            e.as_deref()
                .is_some_and(|m| m.contains("HALLPASS_OIDC_KC_ISSUER")),
            "{e:?}"
        );
        let e = SsoEnv::from_env(env(&[
            ("HALLPASS_OIDC_PROVIDERS", "kc"),
            ("HALLPASS_OIDC_KC_ISSUER", "https://kc"),
            ("HALLPASS_OIDC_KC_CLIENT_ID", "x"),
            ("HALLPASS_OIDC_KC_SCOPES", "profile"),
        ]))
        .err();
        assert!(e.as_deref().is_some_and(|m| m.contains("openid")), "{e:?}");
        let e = SsoEnv::from_env(env(&[
            ("HALLPASS_OIDC_PROVIDERS", "kc"),
            ("HALLPASS_OIDC_KC_ISSUER", "https://kc"),
            ("HALLPASS_OIDC_KC_CLIENT_ID", "x"),
            ("HALLPASS_OIDC_KC_GROUPS_CLAIM", "two words"),
        ]))
        .err();
        assert!(
            e.as_deref()
                .is_some_and(|m| m.contains("HALLPASS_OIDC_KC_GROUPS_CLAIM")),
            "{e:?}"
        );
    }

    #[test]
    fn override_and_pin() -> Result<(), String> {
        let e = SsoEnv::from_env(env(&[
            ("HALLPASS_SSO_DISABLE_OVERRIDE", " YES "),
            ("HALLPASS_BOOTSTRAP_ADMIN", "authelia:alice"),
        ]))?;
        assert!(e.disable_override);
        assert_eq!(
            e.bootstrap_admin.map(|p| (p.provider, p.who)),
            Some(("authelia".to_owned(), "alice".to_owned()))
        );
        Ok(())
    }

    #[test]
    fn a_client_secret_can_come_from_a_file() -> Result<(), Box<dyn std::error::Error>> {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-the-file\n")?;
        let path = path.to_str().unwrap_or_default();
        let base = [
            ("HALLPASS_OIDC_PROVIDERS", "pocket-id"),
            ("HALLPASS_OIDC_POCKET_ID_ISSUER", "https://id.example.com"),
            ("HALLPASS_OIDC_POCKET_ID_CLIENT_ID", "abc"),
            ("HALLPASS_OIDC_POCKET_ID_CLIENT_SECRET", "from-the-variable"),
        ];
        let mut vars = base.to_vec();
        vars.push(("HALLPASS_OIDC_POCKET_ID_CLIENT_SECRET_FILE", path));
        let e = SsoEnv::from_env(env(&vars))?;
        let secret = e.providers[0].client_secret.as_ref().ok_or("no secret")?;
        assert_eq!(secret.expose_secret(), "from-the-file");
        let mut vars = base.to_vec();
        vars.push((
            "HALLPASS_OIDC_POCKET_ID_CLIENT_SECRET_FILE",
            "/nonexistent/s",
        ));
        let e = SsoEnv::from_env(env(&vars)).err().unwrap_or_default();
        assert!(
            e.contains("HALLPASS_OIDC_POCKET_ID_CLIENT_SECRET_FILE")
                && e.contains("/nonexistent/s"),
            "{e}"
        );
        Ok(())
    }
}
