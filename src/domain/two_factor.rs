//! The second factor's rules, without I/O: who must have one (the instance's [`Requirement`]),
//! what a typed code is ([`Code`]), and how recovery codes look.

use super::Role;

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;

/// The instance setting "require a second factor for: nobody / admins / everyone".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Requirement {
    #[default]
    Nobody,
    Admins,
    Everyone,
}

impl Requirement {
    pub const ALL: [Requirement; 3] = [
        Requirement::Nobody,
        Requirement::Admins,
        Requirement::Everyone,
    ];

    /// The stored and submitted name.
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Nobody => "nobody",
            Requirement::Admins => "admins",
            Requirement::Everyone => "everyone",
        }
    }

    /// The settings page's words for it.
    pub fn label(self) -> &'static str {
        match self {
            Requirement::Nobody => "Nobody (each person chooses)",
            Requirement::Admins => "Admins",
            Requirement::Everyone => "Everyone",
        }
    }

    pub fn parse(s: &str) -> Option<Requirement> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }

    /// Whether an account with `role` must have a second factor.
    pub fn applies_to(self, role: Role) -> bool {
        match self {
            Requirement::Nobody => false,
            Requirement::Admins => role == Role::Admin,
            Requirement::Everyone => true,
        }
    }
}

/// What a person typed at the second step: a six-digit TOTP code or a recovery code. Spaces
/// and dashes are ignored (apps show `123 456`, recovery codes are printed `abcde-fghij`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Totp(String),
    Recovery(String),
}

impl Code {
    /// `None`: neither shape (empty, or characters no code has).
    pub fn parse(input: &str) -> Option<Code> {
        let cleaned: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if cleaned.len() == 6 && cleaned.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Code::Totp(cleaned));
        }
        let is_recovery = cleaned.len() == RECOVERY_LEN
            && cleaned.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
        is_recovery.then_some(Code::Recovery(cleaned))
    }
}

/// Recovery codes: 10 characters of a 32-symbol alphabet without look-alikes (no i, l, o, 0:
/// 50 bits), shown as `xxxxx-xxxxx`. Random enough that a keyed hash at rest suffices (no
/// slow hash).
pub const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz123456789";
const RECOVERY_LEN: usize = 10;

/// A recovery code from 10 random bytes (each picks one symbol: 256 is a multiple of 32, so
/// every symbol is equally likely).
pub fn recovery_code(random: [u8; RECOVERY_LEN]) -> String {
    random
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b % 32)]))
        .collect()
}

/// How a recovery code is shown: `abcde-fghij`.
pub fn display_recovery_code(code: &str) -> String {
    match (code.get(..5), code.get(5..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => code.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_by_role() {
        assert!(!Requirement::Nobody.applies_to(Role::Admin));
        assert!(Requirement::Admins.applies_to(Role::Admin));
        assert!(!Requirement::Admins.applies_to(Role::User));
        assert!(Requirement::Everyone.applies_to(Role::Viewer));
        assert_eq!(Requirement::parse("admins"), Some(Requirement::Admins));
        assert_eq!(Requirement::parse("root"), None);
    }

    #[test]
    fn codes_are_recognised_by_shape() {
        assert_eq!(Code::parse(" 123 456 "), Some(Code::Totp("123456".into())));
        assert_eq!(
            Code::parse("ABCDE-FGHJK"),
            Some(Code::Recovery("abcdefghjk".into()))
        );
        assert_eq!(Code::parse("12345"), None);
        assert_eq!(Code::parse("abcde-fghi0"), None, "0 is not in the alphabet");
        assert_eq!(Code::parse(""), None);
    }

    #[test]
    fn recovery_codes_parse_back() {
        let code = recovery_code([0, 7, 30, 31, 62, 255, 100, 9, 200, 13]);
        let shown = display_recovery_code(&code);
        assert_eq!(Code::parse(&shown), Some(Code::Recovery(code)));
    }
}
