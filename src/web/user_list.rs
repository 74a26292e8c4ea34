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
    /// The non-empty parameters as a query string (`q=lab&sort=created`), URL-encoded: the
    /// address of this view of the table, kept by a row action to come back to it.
    pub fn query_string(&self) -> String {
        let mut p = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("role", &self.role),
            ("status", &self.status),
            ("group", &self.group),
            ("sort", &self.sort),
            ("dir", &self.dir),
            ("after", &self.after),
        ] {
            if !v.is_empty() {
                p.append_pair(k, v);
            }
        }
        p.finish()
    }

    /// Reads back a [`query_string`](Self::query_string) sent with a form; unknown keys
    /// are dropped, so what comes back is only ever a view of the table.
    pub fn from_query_string(query: &str) -> Self {
        let mut params = Self::default();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match k.as_ref() {
                "q" => &mut params.q,
                "role" => &mut params.role,
                "status" => &mut params.status,
                "group" => &mut params.group,
                "sort" => &mut params.sort,
                "dir" => &mut params.dir,
                "after" => &mut params.after,
                _ => continue,
            };
            *slot = v.into_owned();
        }
        params
    }

    /// `/admin/users` showing this view, with `extra` (`notice=done`) appended.
    pub fn table_url(&self, extra: &str) -> String {
        let q = self.query_string();
        match (q.is_empty(), extra.is_empty()) {
            (true, true) => "/admin/users".to_owned(),
            (true, false) => format!("/admin/users?{extra}"),
            (false, true) => format!("/admin/users?{q}"),
            (false, false) => format!("/admin/users?{q}&{extra}"),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::ListParams;

    #[test]
    fn a_view_of_the_table_survives_a_round_trip_and_nothing_else_does() {
        let p = ListParams::from_query_string(
            "q=a%26b+c&status=pending&sort=created&dir=desc&after=x1&next=//evil.example",
        );
        assert_eq!(p.q, "a&b c");
        assert_eq!(
            p.table_url("notice=done"),
            "/admin/users?q=a%26b+c&status=pending&sort=created&dir=desc&after=x1&notice=done"
        );
        assert_eq!(ListParams::default().table_url(""), "/admin/users");
        assert_eq!(
            ListParams::from_query_string("next=/x").table_url("notice=done"),
            "/admin/users?notice=done"
        );
    }
}
