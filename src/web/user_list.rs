//! Query parameters of the user table, shared by the HTML page and the JSON API.

use serde::Deserialize;

use crate::db::users::{ListQuery, SortKey};
use crate::domain::{Role, Status, User};

/// Users per page.
pub const PAGE_SIZE: usize = 50;

/// `?q=&role=&status=&sort=&dir=&after=` — every field optional, empty means "any".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub dir: String,
    #[serde(default)]
    pub after: String,
}

impl ListParams {
    pub fn limit(&self) -> usize {
        PAGE_SIZE
    }

    /// Parses into a database query that fetches one extra row (to know if there is more).
    pub fn to_query(&self) -> Result<ListQuery, String> {
        let role = match self.role.as_str() {
            "" => None,
            r => Some(
                r.parse::<Role>()
                    .map_err(|_| format!("Unknown role {r:?}."))?,
            ),
        };
        let (status, deleted) = match self.status.as_str() {
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
        let sort = match self.sort.as_str() {
            "" | "username" => SortKey::Username,
            "created" => SortKey::Created,
            "last_login" => SortKey::LastLogin,
            s => {
                return Err(format!(
                    "Unknown sort {s:?}: use username, created or last_login."
                ));
            }
        };
        let descending = match self.dir.as_str() {
            "" => sort != SortKey::Username,
            "asc" => false,
            "desc" => true,
            d => return Err(format!("Unknown direction {d:?}: use asc or desc.")),
        };
        let after = match self.after.rsplit_once(':') {
            None if self.after.is_empty() => None,
            Some((value, id)) => Some((
                value.to_owned(),
                id.parse::<i64>()
                    .map_err(|_| "Bad page cursor.".to_owned())?,
            )),
            None => return Err("Bad page cursor.".into()),
        };
        let search = self.q.trim().to_lowercase();
        Ok(ListQuery {
            search: (!search.is_empty()).then_some(search),
            role,
            status,
            deleted,
            sort,
            descending,
            after,
            limit: i64::try_from(PAGE_SIZE + 1).unwrap_or(51),
        })
    }
}

/// The cursor for the next page, when the extra row shows there is one.
pub fn next_cursor(rows: &[User], sort: SortKey, limit: usize) -> Option<String> {
    if rows.len() <= limit {
        return None;
    }
    let last = rows.get(limit - 1)?;
    let value = match sort {
        SortKey::Username => last.username.to_ascii_lowercase(),
        SortKey::Created => last.created_at.to_string(),
        SortKey::LastLogin => last.last_login_at.unwrap_or(0).to_string(),
    };
    Some(format!("{value}:{}", last.id))
}
