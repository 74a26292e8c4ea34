//! Queries on `oidc_providers` (providers defined in the admin UI). The client secret
//! arrives and leaves here encrypted; the service layer holds the key.

use diesel::prelude::*;

use super::schema::oidc_providers as p;
use super::{Conn, DbError, now_ts};

/// A stored provider, secret still encrypted. No `Debug`: it holds ciphertext only, but
/// nothing gains from printing it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredProvider {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: String,
    pub subject_claim: String,
    pub username_claim: String,
    pub email_claim: String,
    pub policy: String,
    /// `None`: groups are not read from this provider (also in snapshots older than it).
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(skip)]
    pub enabled: bool,
    /// JSON of the connection settings before the last save.
    #[serde(skip)]
    pub previous: Option<String>,
}

type Row = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
);

#[expect(
    clippy::type_complexity,
    reason = "the column list itself, one element per stored field"
)]
const COLUMNS: (
    p::id,
    p::label,
    p::issuer,
    p::client_id,
    p::client_secret,
    p::scopes,
    p::subject_claim,
    p::username_claim,
    p::email_claim,
    p::policy,
    p::enabled,
    p::previous,
    p::groups_claim,
) = (
    p::id,
    p::label,
    p::issuer,
    p::client_id,
    p::client_secret,
    p::scopes,
    p::subject_claim,
    p::username_claim,
    p::email_claim,
    p::policy,
    p::enabled,
    p::previous,
    p::groups_claim,
);

fn into_stored(r: Row) -> StoredProvider {
    StoredProvider {
        id: r.0,
        label: r.1,
        issuer: r.2,
        client_id: r.3,
        client_secret: r.4,
        scopes: r.5,
        subject_claim: r.6,
        username_claim: r.7,
        email_claim: r.8,
        policy: r.9,
        enabled: r.10 != 0,
        previous: r.11,
        groups_claim: r.12,
    }
}

pub fn list(conn: &mut Conn) -> Result<Vec<StoredProvider>, DbError> {
    Ok(p::table
        .order(p::created_at)
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(into_stored)
        .collect())
}

pub fn get(conn: &mut Conn, id: &str) -> Result<Option<StoredProvider>, DbError> {
    Ok(p::table
        .filter(p::id.eq(id))
        .select(COLUMNS)
        .load::<Row>(conn)?
        .pop()
        .map(into_stored))
}

pub fn insert(conn: &mut Conn, s: &StoredProvider) -> Result<(), DbError> {
    let now = now_ts();
    diesel::insert_into(p::table)
        .values((
            p::id.eq(&s.id),
            p::label.eq(&s.label),
            p::issuer.eq(&s.issuer),
            p::client_id.eq(&s.client_id),
            p::client_secret.eq(&s.client_secret),
            p::scopes.eq(&s.scopes),
            p::subject_claim.eq(&s.subject_claim),
            p::username_claim.eq(&s.username_claim),
            p::email_claim.eq(&s.email_claim),
            p::policy.eq(&s.policy),
            p::groups_claim.eq(&s.groups_claim),
            p::enabled.eq(i32::from(s.enabled)),
            p::previous.eq(&s.previous),
            p::created_at.eq(now),
            p::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Overwrites the connection settings, the enabled flag and the snapshot.
pub fn update(conn: &mut Conn, s: &StoredProvider) -> Result<(), DbError> {
    diesel::update(p::table.filter(p::id.eq(&s.id)))
        .set((
            p::label.eq(&s.label),
            p::issuer.eq(&s.issuer),
            p::client_id.eq(&s.client_id),
            p::client_secret.eq(&s.client_secret),
            p::scopes.eq(&s.scopes),
            p::subject_claim.eq(&s.subject_claim),
            p::username_claim.eq(&s.username_claim),
            p::email_claim.eq(&s.email_claim),
            p::policy.eq(&s.policy),
            p::groups_claim.eq(&s.groups_claim),
            p::enabled.eq(i32::from(s.enabled)),
            p::previous.eq(&s.previous),
            p::updated_at.eq(now_ts()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut Conn, id: &str) -> Result<(), DbError> {
    diesel::delete(p::table.filter(p::id.eq(id))).execute(conn)?;
    Ok(())
}

pub fn delete_all(conn: &mut Conn) -> Result<usize, DbError> {
    Ok(diesel::delete(p::table).execute(conn)?)
}

/// Providers defined in the admin UI whose button is shown.
pub fn count_enabled(conn: &mut Conn) -> Result<i64, DbError> {
    Ok(p::table.filter(p::enabled.eq(1)).count().get_result(conn)?)
}
