//! The portal on `/`: the apps the signed-in person may open. An app is listed when it has
//! a link and forward-auth would let this person `GET` that link: the same decision, on the
//! same live rules, as the proxies get (so a link that another, more specific app guards is
//! listed by what that app says).

use super::ServiceError;
use crate::db::DbPool;
use crate::domain::User;
use crate::domain::apps::{Decision, Protected, Subject, TestRequest};
use crate::service::authz::{Authz, groups_of};

/// How an app's icon is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalIcon {
    /// An image address (http(s) or a path on this server).
    Image(String),
    /// An emoji or a few letters.
    Text(String),
    /// No icon set: the name's first letter.
    Initial(String),
}

/// One tile of the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalApp {
    pub name: String,
    pub url: String,
    pub icon: PortalIcon,
}

/// What the portal shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// By name, any case.
    pub apps: Vec<PortalApp>,
    /// Whether any app has a link at all (the empty state differs: none yet, or none open).
    pub any_linked: bool,
}

/// The portal of `user`. Reads the user's groups (one query); the rules come from the
/// process's cached table.
pub async fn portal(db: &DbPool, authz: &Authz, user: &User) -> Result<Portal, ServiceError> {
    let table = authz.table(db).await?;
    let linked: Vec<_> = table.apps().iter().filter(|a| a.url.is_some()).collect();
    if linked.is_empty() {
        return Ok(Portal {
            apps: Vec::new(),
            any_linked: false,
        });
    }
    let groups: Vec<i64> = groups_of(db, user.id)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let who = Subject {
        user_id: user.id,
        role: user.role,
        status: user.status,
        groups: &groups,
    };
    let mut apps: Vec<PortalApp> = linked
        .into_iter()
        .filter_map(|app| {
            let url = app.url.as_deref()?;
            let request = TestRequest::parse(url, "GET").ok()?;
            let verdict = table.decide(
                Protected {
                    method: &request.method,
                    host: &request.host,
                    path: &request.path,
                },
                Some(who),
            );
            (verdict.decision == Decision::Allow).then(|| PortalApp {
                name: app.name.clone(),
                url: url.to_owned(),
                icon: icon_of(&app.name, app.icon.as_deref()),
            })
        })
        .collect();
    apps.sort_by_cached_key(|a| a.name.to_lowercase());
    Ok(Portal {
        apps,
        any_linked: true,
    })
}

fn icon_of(name: &str, icon: Option<&str>) -> PortalIcon {
    match icon {
        Some(i) if i.starts_with("http://") || i.starts_with("https://") || i.starts_with('/') => {
            PortalIcon::Image(i.to_owned())
        }
        Some(i) => PortalIcon::Text(i.to_owned()),
        None => PortalIcon::Initial(
            name.chars()
                .next()
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_default(),
        ),
    }
}
