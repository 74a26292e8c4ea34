//! `/`: the portal (the apps the signed-in person may open) and who you are.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use tower_sessions::Session;

use crate::domain::Role;
use crate::service::apps::{self, Portal, PortalIcon};
use crate::state::AppState;

use super::{Layout, UserView};
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    me: UserView,
    portal: Portal,
    is_admin: bool,
}

/// How the template draws an icon: an image, or text (an emoji or a few letters) in a
/// square, smaller when it is more than two characters.
impl PortalIcon {
    fn image(&self) -> Option<&str> {
        match self {
            PortalIcon::Image(src) => Some(src),
            _ => None,
        }
    }

    fn text(&self) -> &str {
        match self {
            PortalIcon::Image(_) => "",
            PortalIcon::Text(t) | PortalIcon::Initial(t) => t,
        }
    }

    fn is_long(&self) -> bool {
        self.text().chars().count() > 2
    }
}

pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<HomePage, UiError> {
    let portal = apps::portal(&state.db, &state.authz, &me.user).await?;
    Ok(HomePage {
        layout: Layout::new("Home", &state, &session, Some(&me)).await?,
        me: UserView::from(&me),
        portal,
        is_admin: me.user.role == Role::Admin,
    })
}
