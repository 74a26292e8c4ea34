//! The admin user table's query: filters, order and keyset cursor, parsed once from the
//! query string for the HTML page and the JSON API alike.

use super::{Role, Status, User};

/// Users per page.
pub const PAGE_SIZE: usize = 50;

/// Searches this long or longer match anywhere in username, email or display name (a
/// trigram index answers them); shorter ones match the start of the username, because a
/// "contains" of one or two characters has no index on either database and would read
/// every account.
pub const CONTAINS_MIN_CHARS: usize = 3;

/// Separates the three fields in [`search_key`]: a control character, which neither a
/// field nor a (folded) search can contain, so no match spans two fields.
pub const SEARCH_FIELD_SEPARATOR: char = '\n';

/// The form text is compared in: lower case by Unicode's rules (`Ä` → `ä`, `Ж` → `ж`,
/// `Σ` → `σ`), then two folds lower-casing alone misses: the final sigma `ς` reads as
/// `σ`, and `ß` as `ss` (so "STRASSE" finds "Straße"). Done in Rust rather than with the
/// databases' `lower()`, which folds only ASCII in SQLite and under PostgreSQL's C locale.
/// Control characters are dropped (see [`SEARCH_FIELD_SEPARATOR`]).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().chars() {
        match c {
            'ς' => out.push('σ'),
            'ß' => out.push_str("ss"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// What the search matches, stored beside each account (`users.search_key`) and indexed:
/// the folded username, email and display name, one per line. Every write that changes one
/// of the three rewrites it (`db::users`).
pub fn search_key(username: &str, email: Option<&str>, display_name: Option<&str>) -> String {
    let mut key = fold(username);
    key.push(SEARCH_FIELD_SEPARATOR);
    key.push_str(&fold(email.unwrap_or("")));
    key.push(SEARCH_FIELD_SEPARATOR);
    key.push_str(&fold(display_name.unwrap_or("")));
    key
}

/// A search, folded, and how the database answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// Three characters or more: username, email or display name contains it.
    Contains(String),
    /// One or two characters: the username starts with it.
    UsernamePrefix(String),
}

impl Search {
    /// The search for the text typed (trimmed and folded); `None` when nothing is left.
    pub fn parse(q: &str) -> Option<Search> {
        let text = fold(q.trim());
        match text.chars().count() {
            0 => None,
            n if n < CONTAINS_MIN_CHARS => Some(Search::UsernamePrefix(text)),
            _ => Some(Search::Contains(text)),
        }
    }

    /// The folded text.
    pub fn text(&self) -> &str {
        match self {
            Search::Contains(t) | Search::UsernamePrefix(t) => t,
        }
    }
}

/// Sort orders of the admin user table; each has an index ending in `id` (keyset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Username,
    Created,
    LastLogin,
}

/// A page request for the admin user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// The search, folded (see [`Search`]).
    pub search: Option<Search>,
    pub role: Option<Role>,
    /// `None` = every status except deleted accounts.
    pub status: Option<Status>,
    pub deleted: bool,
    /// Only members of this group (by id).
    pub group: Option<i64>,
    pub sort: SortKey,
    pub descending: bool,
    /// Keyset cursor: the sort value and id of the last row of the previous page.
    pub after: Option<(String, i64)>,
}

impl ListQuery {
    /// Parses the table's query parameters (`q`, `role`, `status`, `sort`, `dir`, `after`;
    /// empty means "any" or the default). The error is the sentence shown to the caller.
    pub fn parse(
        q: &str,
        role: &str,
        status: &str,
        sort: &str,
        dir: &str,
        after: &str,
    ) -> Result<Self, String> {
        let role = match role {
            "" => None,
            r => Some(
                r.parse::<Role>()
                    .map_err(|_| format!("Unknown role {r:?}."))?,
            ),
        };
        let (status, deleted) = match status {
            "" => (None, false),
            "deleted" => (None, true),
            s => (
                Some(
                    s.parse::<Status>()
                        .map_err(|_| format!("Unknown status {s:?}."))?,
                ),
                false,
            ),
        };
        let sort = match sort {
            "" | "username" => SortKey::Username,
            "created" => SortKey::Created,
            "last_login" => SortKey::LastLogin,
            s => {
                return Err(format!(
                    "Unknown sort {s:?}: use username, created or last_login."
                ));
            }
        };
        let descending = match dir {
            "" => sort != SortKey::Username,
            "asc" => false,
            "desc" => true,
            d => return Err(format!("Unknown direction {d:?}: use asc or desc.")),
        };
        let after = match after.rsplit_once(':') {
            None if after.is_empty() => None,
            Some((value, id)) => Some((
                value.to_owned(),
                id.parse::<i64>()
                    .map_err(|_| "Bad page cursor.".to_owned())?,
            )),
            None => return Err("Bad page cursor.".into()),
        };
        Ok(ListQuery {
            search: Search::parse(q),
            role,
            status,
            deleted,
            group: None,
            sort,
            descending,
            after,
        })
    }

    /// Adds the `group` filter (a group id; empty means any group). An id no group has
    /// matches nobody.
    pub fn with_group(mut self, group: &str) -> Result<Self, String> {
        self.group = match group.trim() {
            "" => None,
            g => Some(
                g.parse::<i64>()
                    .map_err(|_| format!("Unknown group {g:?}: use a group id."))?,
            ),
        };
        Ok(self)
    }

    /// The cursor that continues after `last` (the last row shown) in this order.
    pub fn cursor_after(&self, last: &User) -> String {
        let value = match self.sort {
            SortKey::Username => last.username.to_ascii_lowercase(),
            SortKey::Created => last.created_at.to_string(),
            SortKey::LastLogin => last.last_login_at.unwrap_or(0).to_string(),
        };
        format!("{value}:{}", last.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_refusals() {
        let q = ListQuery::parse(" Ann ", "", "", "", "", "").unwrap();
        assert_eq!(q.search, Some(Search::Contains("ann".into())));
        assert_eq!(
            (q.sort, q.descending, q.deleted),
            (SortKey::Username, false, false)
        );
        let q = ListQuery::parse("", "admin", "deleted", "created", "", "5:7").unwrap();
        assert_eq!(
            (q.role, q.deleted, q.descending),
            (Some(Role::Admin), true, true)
        );
        assert_eq!(q.after, Some(("5".to_owned(), 7)));
        assert!(ListQuery::parse("", "root", "", "", "", "").is_err());
        assert!(ListQuery::parse("", "", "", "", "", "nocolon").is_err());
        assert!(ListQuery::parse("", "", "", "", "up", "").is_err());
        let q = ListQuery::parse("", "", "", "", "", "").unwrap();
        assert_eq!(q.clone().with_group(" 12 ").unwrap().group, Some(12));
        assert_eq!(q.clone().with_group("").unwrap().group, None);
        assert!(q.with_group("family").is_err());
    }

    #[test]
    fn folding_is_unicode_aware() {
        assert_eq!(fold("ÄRGER"), "ärger");
        assert_eq!(fold("ЖУК Σοφία"), "жук σοφία");
        assert_eq!(fold("ΟΔΟΣ"), "οδοσ", "final sigma reads as sigma");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("STRAẞE"), "strasse");
        assert_eq!(fold("a\nb\0c"), "abc");
        assert_eq!(
            search_key("Ann", Some("Ann@Example.org"), Some("Ann Ärger")),
            "ann\nann@example.org\nann ärger"
        );
        assert_eq!(search_key("bo", None, None), "bo\n\n");
    }

    #[test]
    fn short_searches_are_prefixes() {
        assert_eq!(Search::parse("  "), None);
        assert_eq!(
            Search::parse(" A "),
            Some(Search::UsernamePrefix("a".into()))
        );
        assert_eq!(
            Search::parse("Äb"),
            Some(Search::UsernamePrefix("äb".into()))
        );
        assert_eq!(
            Search::parse("ß"),
            Some(Search::UsernamePrefix("ss".into()))
        );
        assert_eq!(Search::parse("abc"), Some(Search::Contains("abc".into())));
        assert_eq!(Search::parse("%_x"), Some(Search::Contains("%_x".into())));
    }
}
