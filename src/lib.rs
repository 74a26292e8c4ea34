//! Hallpass: sign-in and user administration for homelabs.
//!
//! `main.rs` is a thin CLI over this library; the integration tests drive the same
//! [`server::prepare`] and [`server::run`] over a real socket.

pub mod bootstrap;
pub mod config;
pub mod db;
pub mod domain;
pub mod env_auth;
pub mod logging;
pub mod metrics;
pub mod secret;
pub mod serve;
pub mod server;
pub mod service;
pub mod sso_env;
pub mod state;
pub mod web;

pub use web::router as build_app;
