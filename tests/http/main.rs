//! Integration tests: a real server on a random port, real HTTP, every database test on
//! SQLite and on PostgreSQL (see `support::both_databases!`).

// Test code: a failed unwrap is a failed test, which is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod support;

mod access_matrix;
mod account;
mod admin_ui;
mod admin_users;
mod api;
mod api_keys;
mod apps;
mod audit;
mod backup;
mod browser;
mod browser_apps;
mod browser_groups;
mod browser_invite_passkeys;
mod browser_invites;
mod browser_passkeys;
mod browser_proxy;
mod browser_sessions;
mod browser_sso;
mod browser_two_factor;
mod cli;
mod client_ip;
mod cluster;
mod compression;
mod connections;
mod cookie_domain;
mod database;
mod env_auth;
mod forward_auth;
mod forward_auth_proxies;
mod fuzz;
mod groups;
mod groups_claim;
mod idp_harness;
mod invalidation;
mod invite_passkeys;
mod invites;
mod lockouts;
mod login;
mod logs;
mod memory;
mod metrics;
mod metrics_limit;
mod openapi;
mod openapi_a;
mod openapi_b;
mod openapi_c;
mod passkeys;
mod pg_tls;
mod plans;
mod proxy;
mod rate_limit;
mod recover;
mod registration;
mod revert;
mod secret_files;
mod security;
mod session_control;
mod sessions;
mod setup;
mod sign_in_return;
mod sso;
mod sso_api;
mod sso_trust;
mod two_factor;
mod two_factor_proxy;
mod user_search;
