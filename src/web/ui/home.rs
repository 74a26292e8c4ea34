//! `/`: who you are.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use tower_sessions::Session;

use crate::state::AppState;

use super::{Layout, UserView};
use crate::web::error::UiError;
use crate::web::identity::CurrentUser;

#[derive(Template, WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    layout: Layout,
    me: UserView,
}

pub async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    session: Session,
) -> Result<HomePage, UiError> {
    Ok(HomePage {
        layout: Layout::new("Home", &state, &session, Some(&me)).await?,
        me: UserView::from(&me),
    })
}
