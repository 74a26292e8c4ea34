//! Query parameters of the user table, shared by the HTML page and the JSON API.

use serde::Deserialize;

use crate::domain::ListQuery;

/// `?q=&role=&status=&group=&sort=&dir=&after=` — every field optional, empty means "any".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListParams {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub status: String,
    /// A group id: only its members.
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub dir: String,
    #[serde(default)]
    pub after: String,
}

impl ListParams {
    /// The query these parameters ask for; the error is the sentence for a 400.
    pub fn to_query(&self) -> Result<ListQuery, String> {
        ListQuery::parse(
            &self.q,
            &self.role,
            &self.status,
            &self.sort,
            &self.dir,
            &self.after,
        )?
        .with_group(&self.group)
    }
}
