//! Passkeys (WebAuthn): the rules that need no crate — a passkey's name, where the relying
//! party comes from, and whether removing one leaves the account a way in.

use super::FieldErrors;

/// Longest name a passkey may have (characters).
pub const MAX_NAME: usize = 64;

/// A passkey's name as its owner typed it: trimmed, 1–64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub fn parse(raw: &str) -> Result<Self, FieldErrors> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldErrors::single(
                "name",
                "Give the passkey a name (the device or password manager that holds it).",
            ));
        }
        if name.chars().count() > MAX_NAME {
            return Err(FieldErrors::single(
                "name",
                format!("At most {MAX_NAME} characters."),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(FieldErrors::single(
                "name",
                "The name cannot contain control characters.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The relying party browsers bind passkeys to: the host of `server.public_url` (its id) and
/// the URL's origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origin: url::Url,
}

/// Why passkeys cannot be used on this instance, in words for the person (and the operator).
pub fn relying_party(public_url: Option<&str>) -> Result<RelyingParty, String> {
    let Some(raw) = public_url else {
        return Err(
            "Passkeys need server.public_url (the https:// address people sign in at): \
             it is not set, so passkeys are off."
                .to_owned(),
        );
    };
    let origin = url::Url::parse(raw)
        .map_err(|_| format!("Passkeys are off: server.public_url ({raw}) is not a URL."))?;
    let Some(host) = origin.host() else {
        return Err(format!(
            "Passkeys are off: server.public_url ({raw}) has no host."
        ));
    };
    let id = match host {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(_) | url::Host::Ipv6(_) => {
            return Err(format!(
                "Passkeys are off: server.public_url ({raw}) is an IP address, and browsers bind \
                 passkeys to a domain name. Use a name (for a test on this machine, \
                 http://localhost:PORT)."
            ));
        }
    };
    let local = id == "localhost" || id.ends_with(".localhost");
    if origin.scheme() != "https" && !local {
        return Err(format!(
            "Passkeys are off: server.public_url ({raw}) is not https://, and browsers offer \
             passkeys only to https:// sites (and http://localhost)."
        ));
    }
    Ok(RelyingParty { id, origin })
}

/// What an account has to sign in with, besides the passkey about to be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaysIn {
    pub has_password: bool,
    pub linked_identities: usize,
    /// Passkeys left after the removal.
    pub other_passkeys: usize,
}

impl WaysIn {
    fn any(self) -> bool {
        self.has_password || self.linked_identities > 0 || self.other_passkeys > 0
    }
}

/// An admin's reset of someone's second factors removes their passkeys too (a lost phone
/// is usually a lost passkey): it must not leave the account with no way to sign in.
pub fn check_reset(username: &str, w: WaysIn) -> Result<(), String> {
    if w.any() {
        Ok(())
    } else {
        Err(format!(
            "{username} signs in with a passkey only (no password, no linked identity): the \
             reset would remove their passkeys and leave no way in. Set a new password for them \
             first, then reset."
        ))
    }
}

/// Removing a passkey must not leave its account with no way to sign in.
pub fn check_removal(w: WaysIn) -> Result<(), String> {
    if w.any() {
        Ok(())
    } else {
        Err(
            "This is the account's last way to sign in (it has no password, no other passkey \
             and no linked identity): add another passkey or set a password first."
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(PasskeyName::parse("  Phone ").unwrap().as_str(), "Phone");
        assert!(PasskeyName::parse("   ").is_err());
        assert!(PasskeyName::parse(&"x".repeat(65)).is_err());
        assert!(PasskeyName::parse(&"é".repeat(64)).is_ok());
        assert!(PasskeyName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn the_relying_party_comes_from_the_public_url() {
        let rp = relying_party(Some("https://Auth.Example.com/")).unwrap();
        assert_eq!(rp.id, "auth.example.com");
        assert_eq!(
            rp.origin.origin().ascii_serialization(),
            "https://auth.example.com"
        );
        assert_eq!(
            relying_party(Some("http://localhost:8700")).unwrap().id,
            "localhost"
        );
        assert!(relying_party(None).unwrap_err().contains("not set"));
        assert!(
            relying_party(Some("http://auth.example.com"))
                .unwrap_err()
                .contains("https")
        );
        assert!(
            relying_party(Some("https://10.0.0.2"))
                .unwrap_err()
                .contains("IP address")
        );
        assert!(
            relying_party(Some("http://127.0.0.1:8700"))
                .unwrap_err()
                .contains("localhost")
        );
    }

    #[test]
    fn a_reset_keeps_a_way_in() {
        let passkeys_only = WaysIn {
            has_password: false,
            linked_identities: 0,
            other_passkeys: 0,
        };
        let refused = check_reset("bob", passkeys_only).unwrap_err();
        assert!(
            refused.starts_with("bob signs in with a passkey only"),
            "{refused}"
        );
        let with_password = WaysIn {
            has_password: true,
            ..passkeys_only
        };
        assert!(check_reset("bob", with_password).is_ok());
        let linked = WaysIn {
            linked_identities: 1,
            ..passkeys_only
        };
        assert!(check_reset("bob", linked).is_ok());
    }

    #[test]
    fn the_last_way_in_stays() {
        let none = WaysIn {
            has_password: false,
            linked_identities: 0,
            other_passkeys: 0,
        };
        assert!(check_removal(none).is_err());
        assert!(
            check_removal(WaysIn {
                has_password: true,
                ..none
            })
            .is_ok()
        );
        assert!(
            check_removal(WaysIn {
                linked_identities: 1,
                ..none
            })
            .is_ok()
        );
        assert!(
            check_removal(WaysIn {
                other_passkeys: 1,
                ..none
            })
            .is_ok()
        );
    }
}
