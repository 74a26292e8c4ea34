//! Query parameters of the user table, shared by the HTML page and the JSON API.

use serde::Deserialize;

use crate::domain::{ListQuery, Role};

/// `?q=&role=&status=&group=&sort=&dir=&after=` — every field optional, empty means "any".
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Search: a username prefix (one or two characters), or text contained in the username,
    /// email or display name (three or more), case- and accent-insensitive.
    #[serde(default)]
    pub q: String,
    /// Only accounts with this role.
    #[serde(default)]
    #[param(value_type = Role)]
    pub role: String,
    // Described in `status_filter` (utoipa drops the doc comment of a `schema_with` field).
    #[serde(default)]
    #[param(schema_with = status_filter)]
    pub status: String,
    /// A group id: only its members.
    #[serde(default)]
    #[param(value_type = i64)]
    pub group: String,
    // Described in `sort_key`.
    #[serde(default)]
    #[param(schema_with = sort_key)]
    pub sort: String,
    // Described in `direction`.
    #[serde(default)]
    #[param(schema_with = direction)]
    pub dir: String,
    /// The cursor of the next page: the `next` of the previous answer, with the same other
    /// parameters.
    #[serde(default)]
    pub after: String,
}

/// A string parameter that takes one of `values` (for the OpenAPI document).
fn one_of(values: &[&str], description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

fn status_filter() -> utoipa::openapi::Object {
    one_of(
        &["pending", "active", "rejected", "disabled", "deleted"],
        "Only accounts in this state; `deleted` lists deleted accounts (left out otherwise).",
    )
}

fn sort_key() -> utoipa::openapi::Object {
    one_of(
        &["username", "created", "last_login"],
        "The order; `username` by default.",
    )
}

fn direction() -> utoipa::openapi::Object {
    one_of(
        &["asc", "desc"],
        "`asc` by default for `username`, `desc` for the others.",
    )
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
