//! HTTP: the router, the layers every request passes, and the two front ends
//! (`ui` renders HTML, `api` speaks JSON) over the same service layer.

pub mod api;
pub mod authz;
pub mod client;
pub mod csrf;
pub mod edge;
pub mod error;
pub mod gates;
pub mod guards;
pub mod gzip;
pub mod headers;
pub mod health;
pub mod host;
pub mod identity;
pub mod input;
pub mod metrics;
pub mod read_stamp;
pub mod request_log;
pub mod return_to;
pub mod second_step;
pub mod session;
pub mod setup_gate;
pub mod sso_flow;
pub mod static_files;
pub mod surface;
pub mod ui;
pub mod user_list;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{any, delete, get, patch, post, put};

use crate::state::AppState;

/// Pages and JSON over 4 KiB gzip-compressed for clients that accept it. Smaller bodies
/// (the sign-in page: 1.9 KB) gain a kilobyte and would cost more CPU than the rest of the
/// request (measured on the sign-in page: 14k req/s plain, 7.4k gzip, 4.4k brotli), and
/// brotli per response costs more than gzip: static assets, where brotli pays, come
/// precompressed (`static_files`). Only on the page and API routes: the health checks and
/// forward-auth answers are tiny and hot. Safe next to CSRF tokens because those are masked
/// per response (see `csrf`).
fn compression()
-> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Precise(4))
        .compress_when(
            SizeAbove::new(4096)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::IMAGES)
                .and(NotForContentType::SSE),
        )
}

/// Every route of the application with its layers. Used by `serve` and by the tests.
pub fn router(state: AppState) -> Router {
    // Innermost first: a request passes the edge check (host name, path and query text) →
    // session → identity (which runs the rest in the request's CSRF context) → the gates,
    // plain calls in a row (setup → status → CSRF, which checks the body's text last; see
    // `gates`) → handler. Few layers on purpose: each one costs every request. They are
    // stacked with one `ServiceBuilder` and handed to the router once: every `Router::layer`
    // call boxes the routes again, and each box is cloned (with everything boxed under it) on
    // every request.
    let app = Router::new()
        .route("/", get(ui::home::page))
        .route("/setup", get(ui::setup::page).post(ui::setup::submit))
        .route(
            "/setup/restore",
            post(ui::setup::restore).layer(DefaultBodyLimit::max(state.config.backup.upload_limit)),
        )
        .route("/login", get(ui::login::page).post(ui::login::submit))
        .route("/logout", post(ui::login::logout))
        .route(
            "/login/two-factor",
            get(ui::two_factor::code_page).post(ui::two_factor::code_submit),
        )
        .route(
            "/login/two-factor/setup",
            get(ui::two_factor::setup_page).post(ui::two_factor::setup_submit),
        )
        .route("/account/two-factor", get(ui::two_factor::account::page))
        .route(
            "/account/two-factor/start",
            post(ui::two_factor::account::start),
        )
        .route(
            "/account/two-factor/confirm",
            post(ui::two_factor::account::confirm),
        )
        .route(
            "/account/two-factor/disable",
            post(ui::two_factor::account::disable),
        )
        .route("/login/passkey", post(ui::passkeys::sign_in))
        .route(
            "/login/passkey/options",
            post(ui::passkeys::sign_in_options),
        )
        .route(
            "/login/two-factor/passkey",
            post(ui::passkeys::second_factor),
        )
        .route(
            "/login/two-factor/passkey/options",
            post(ui::passkeys::second_factor_options),
        )
        .route(
            "/account/passkeys",
            get(ui::passkeys::account::page).post(ui::passkeys::account::add),
        )
        .route(
            "/account/passkeys/options",
            post(ui::passkeys::account::options),
        )
        .route(
            "/account/passkeys/{id}/rename",
            post(ui::passkeys::account::rename),
        )
        .route(
            "/account/passkeys/{id}/remove",
            post(ui::passkeys::account::remove),
        )
        .route("/account", get(ui::account::page))
        .route("/account/sessions", get(ui::sessions::mine))
        .route(
            "/account/sessions/others/end",
            post(ui::sessions::end_my_others),
        )
        .route("/account/sessions/{id}/end", post(ui::sessions::end_mine))
        .route("/admin/users/{id}/sessions", get(ui::sessions::of_user))
        .route(
            "/admin/users/{id}/sessions/end-all",
            post(ui::sessions::end_all_of_user),
        )
        .route(
            "/admin/users/{id}/sessions/{session}/end",
            post(ui::sessions::end_of_user),
        )
        .route("/admin/lockouts", get(ui::lockouts::page))
        .route("/admin/lockouts/{id}/lift", post(ui::lockouts::lift))
        .route("/account/password", post(ui::account::change_password))
        .route(
            "/admin/users",
            get(ui::admin_users::table).post(ui::admin_users::create),
        )
        .route("/admin/users/new", get(ui::admin_users::new_form))
        .route("/admin/users/{id}", post(ui::admin_users::update))
        .route("/admin/users/{id}/edit", get(ui::admin_users::edit_form))
        .route("/admin/users/{id}/row", get(ui::admin_users::row_fragment))
        .route(
            "/admin/users/{id}/two-factor",
            get(ui::two_factor::admin::page),
        )
        .route(
            "/admin/users/{id}/two-factor/reset",
            post(ui::two_factor::admin::reset),
        )
        .route(
            "/admin/settings/two-factor",
            post(ui::settings::save_two_factor),
        )
        .route(
            "/admin/users/{id}/password",
            post(ui::admin_users::reset_password),
        )
        .route(
            "/admin/users/{id}/purge",
            get(ui::admin_users::purge_form).post(ui::admin_users::purge),
        )
        .route(
            "/admin/users/{id}/confirm/{action}",
            get(ui::admin_users::confirm),
        )
        .route(
            "/admin/users/{id}/{action}",
            post(ui::admin_users::row_action),
        )
        .route(
            "/admin/users/{id}/groups",
            post(ui::admin_users::save_groups),
        )
        .route(
            "/admin/groups",
            get(ui::groups::list).post(ui::groups::create),
        )
        .route(
            "/admin/groups/{id}",
            get(ui::groups::page).post(ui::groups::save),
        )
        .route("/admin/groups/{id}/members", post(ui::groups::add_member))
        .route(
            "/admin/groups/{id}/members/{user_id}/remove",
            post(ui::groups::remove_member),
        )
        .route(
            "/admin/groups/{id}/delete",
            get(ui::groups::confirm_delete).post(ui::groups::delete),
        )
        .route(
            "/admin/invites",
            get(ui::invites::list).post(ui::invites::create),
        )
        .route(
            "/admin/invites/{id}/revoke",
            get(ui::invites::confirm_revoke).post(ui::invites::revoke),
        )
        .route(
            "/invite/{token}",
            get(ui::invites::page).post(ui::invites::submit),
        )
        .route(
            "/invite/{token}/passkey/options",
            post(ui::invites::passkey_options),
        )
        .route("/invite/{token}/passkey", post(ui::invites::passkey_submit))
        .route("/account/api-keys", post(ui::account::create_key))
        .route(
            "/account/identities/{provider}/link",
            post(ui::account::link_identity),
        )
        .route(
            "/account/identities/{id}/unlink",
            get(ui::account::confirm_unlink).post(ui::account::unlink_identity),
        )
        .route(
            "/account/api-keys/{id}/revoke",
            get(ui::account::confirm_revoke).post(ui::account::revoke_key),
        )
        .route(
            "/register",
            get(ui::register::page).post(ui::register::submit),
        )
        .route("/admin/apps", get(ui::apps::page).post(ui::apps::create))
        .route("/admin/apps/new", get(ui::apps::new_form))
        .route("/admin/apps/test", get(ui::apps::tester))
        .route(
            "/admin/apps/{id}",
            get(ui::apps::edit_form).post(ui::apps::update),
        )
        .route(
            "/admin/apps/{id}/delete",
            get(ui::apps::confirm_delete).post(ui::apps::delete),
        )
        .route("/admin/audit", get(ui::audit::page))
        .route(
            "/admin/settings",
            get(ui::settings::page).post(ui::settings::save),
        )
        .route(
            "/admin/proxy",
            get(ui::proxy::page).post(ui::proxy::save_preset),
        )
        .route("/admin/proxy/links", post(ui::proxy::link))
        .route("/admin/diagnostics", get(ui::proxy::diagnostics))
        .route("/admin/sso", get(ui::sso::page))
        .route("/admin/sso/modes", post(ui::sso::save_modes))
        .route(
            "/admin/sso/new",
            get(ui::sso::new_form).post(ui::sso::create),
        )
        .route(
            "/admin/sso/providers/{id}",
            get(ui::sso::edit_form).post(ui::sso::update),
        )
        .route(
            "/admin/sso/providers/{id}/links",
            get(ui::sso::links).post(ui::sso::manual_link),
        )
        .route(
            "/admin/sso/providers/{id}/verify",
            post(ui::sso::verify_and_link),
        )
        .route(
            "/admin/sso/providers/{id}/enabled",
            post(ui::sso::set_enabled),
        )
        .route(
            "/admin/sso/providers/{id}/revert",
            get(ui::sso::confirm_revert).post(ui::sso::revert),
        )
        .route(
            "/admin/sso/providers/{id}/delete",
            get(ui::sso::confirm_delete).post(ui::sso::delete),
        )
        .route(
            "/admin/sso/identities/{id}/unlink",
            get(ui::sso::confirm_unlink).post(ui::sso::unlink),
        )
        .route("/api/auth/oidc/{provider}/login", get(api::oidc::login))
        .route(
            "/api/auth/oidc/{provider}/callback",
            get(api::oidc::callback),
        )
        .route("/api/auth/login", post(api::auth::login))
        .route(
            "/api/admin/users/{id}/two-factor",
            delete(api::two_factor::reset),
        )
        .route(
            "/api/admin/settings/two-factor",
            get(api::two_factor::get_requirement).put(api::two_factor::put_requirement),
        )
        .route(
            "/api/auth/login/second-factor",
            post(api::auth::second_factor),
        )
        .route("/api/auth/logout", post(api::auth::logout))
        .route("/api/auth/me", get(api::auth::me))
        .route("/api/me/password", post(api::auth::change_password))
        .route(
            "/api/admin/users",
            get(api::admin_users::list).post(api::admin_users::create),
        )
        .route(
            "/api/admin/users/{id}",
            get(api::admin_users::get_one)
                .patch(api::admin_users::patch)
                .delete(api::admin_users::delete),
        )
        .route(
            "/api/admin/users/{id}/{action}",
            post(api::admin_users::action),
        )
        .route(
            "/api/admin/groups",
            get(api::groups::list).post(api::groups::create),
        )
        .route(
            "/api/admin/groups/{id}",
            get(api::groups::get_one)
                .patch(api::groups::patch)
                .delete(api::groups::delete),
        )
        .route(
            "/api/admin/groups/{id}/members",
            get(api::groups::members).post(api::groups::add_member),
        )
        .route(
            "/api/admin/groups/{id}/members/{user_id}",
            delete(api::groups::remove_member),
        )
        .route(
            "/api/admin/invites",
            get(api::invites::list).post(api::invites::create),
        )
        .route(
            "/api/admin/invites/{id}",
            get(api::invites::get_one).delete(api::invites::revoke),
        )
        .route(
            "/api/me/api-keys",
            get(api::api_keys::list_own).post(api::api_keys::create_own),
        )
        .route("/api/me/api-keys/{id}", delete(api::api_keys::revoke_own))
        .route("/api/me/passkeys", get(api::passkeys::list_own))
        .route(
            "/api/me/passkeys/{id}",
            patch(api::passkeys::rename_own).delete(api::passkeys::remove_own),
        )
        .route(
            "/api/admin/users/{id}/api-keys",
            get(api::api_keys::list_for_user),
        )
        .route(
            "/api/admin/api-keys/{id}",
            delete(api::api_keys::revoke_any),
        )
        .route(
            "/api/admin/apps",
            get(api::apps::list).post(api::apps::create),
        )
        .route("/api/admin/apps/test", post(api::apps::test))
        .route(
            "/api/admin/apps/{id}",
            get(api::apps::get_one)
                .put(api::apps::replace)
                .patch(api::apps::patch)
                .delete(api::apps::delete),
        )
        .route("/api/admin/audit", get(api::admin::audit))
        .route(
            "/api/admin/sso/providers",
            get(api::sso::list).post(api::sso::create),
        )
        .route(
            "/api/admin/sso/providers/{id}",
            get(api::sso::get_one)
                .put(api::sso::update)
                .delete(api::sso::delete),
        )
        .route(
            "/api/admin/sso/providers/{id}/revert",
            post(api::sso::revert),
        )
        .route(
            "/api/admin/sso/providers/{id}/enabled",
            put(api::sso::set_enabled),
        )
        .route(
            "/api/admin/sso/providers/{id}/discovery",
            post(api::sso::test_provider_discovery),
        )
        .route("/api/admin/sso/discovery", post(api::sso::test_discovery))
        .route(
            "/api/admin/sso/modes",
            get(api::sso::get_modes).put(api::sso::put_modes),
        )
        .route(
            "/api/admin/sso/providers/{id}/links",
            get(api::sso_links::list).post(api::sso_links::create),
        )
        .route(
            "/api/admin/sso/identities/{id}",
            delete(api::sso_links::unlink),
        )
        .route("/api/admin/proxy", get(api::proxy::get))
        .route("/api/admin/proxy/preset", put(api::proxy::put_preset))
        .route(
            "/api/admin/proxy/preset/revert",
            post(api::proxy::revert_preset),
        )
        .route(
            "/api/admin/proxy/links",
            get(api::proxy::links).post(api::proxy::create_link),
        )
        .route("/api/me/sessions", get(api::sessions::list_mine))
        .route(
            "/api/me/sessions/others",
            delete(api::sessions::end_my_others),
        )
        .route("/api/me/sessions/{id}", delete(api::sessions::end_mine))
        .route(
            "/api/admin/users/{id}/sessions",
            get(api::sessions::list_of_user).delete(api::sessions::end_all_of_user),
        )
        .route(
            "/api/admin/users/{id}/sessions/{session}",
            delete(api::sessions::end_of_user),
        )
        .route("/api/admin/lockouts", get(api::sessions::lockouts))
        .route("/api/admin/lockouts/{id}", delete(api::sessions::lift))
        .route(
            "/api/admin/settings",
            get(api::admin::get_settings).put(api::admin::put_settings),
        )
        .fallback(error::not_found)
        .layer(
            // Outermost first. Identity runs the gates (setup → status → CSRF) as plain calls.
            tower::ServiceBuilder::new()
                .layer(compression())
                .layer(from_fn_with_state(state.clone(), edge::check))
                .layer(session::layer(&state))
                .layer(from_fn_with_state(state.clone(), identity::resolve)),
        );

    let trust = state.config.server.trusted_proxies.clone();
    // The routes below are added after the page and API layers, so those layers do not wrap
    // them. One router rather than two merged: `Router::merge` clones every route of the
    // router it takes in, a second box of every handler at start-up (~0.15 MB less resident
    // after start-up without it, bench/README.md).
    let mut outer = app
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        // Forward-auth answers for other apps: outside the page and API layers (see `authz`).
        .route("/api/authz/forward-auth", any(authz::forward_auth))
        .route("/api/authz/auth-request", any(authz::auth_request))
        .route("/static/{*path}", get(static_files::serve))
        // Static text for anyone, even before setup: no session, no gates.
        .route(
            "/api/openapi.json",
            get(api::openapi::document).layer(compression()),
        );
    if state.metrics.enabled() {
        // Only when on: off, `/metrics` falls through to the 404 of every unknown path.
        outer = outer.route("/metrics", get(metrics::scrape));
    }
    let outer = outer.layer(
        tower::ServiceBuilder::new()
            .layer(request_log::layer(&state.config.log, trust))
            .layer(DefaultBodyLimit::max(state.config.server.body_limit))
            .layer(from_fn_with_state(state.clone(), headers::security)),
    );
    // Outermost, so the latency covers every layer; added only when metrics are on, so a
    // request without them passes no extra code (see `crate::metrics::http`).
    match state.metrics.http_layer() {
        Some(layer) => outer.layer(layer).with_state(state),
        None => outer.with_state(state),
    }
}
