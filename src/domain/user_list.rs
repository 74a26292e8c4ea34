//! The admin user table's query: filters, order and keyset cursor, parsed once from the
//! query string for the HTML page and the JSON API alike.

use super::{Role, Status, User};

/// Users per page.
pub const PAGE_SIZE: usize = 50;

/// Sort orders of the admin user table; each has an index ending in `id` (keyset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Username,
    Created,
    LastLogin,
}

/// A page request for the admin user table.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Lower-cased search text (username, email or display name contains it).
    pub search: Option<String>,
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
        let search = q.trim().to_lowercase();
        Ok(ListQuery {
            search: (!search.is_empty()).then_some(search),
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
        assert_eq!(q.search.as_deref(), Some("ann"));
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
}
