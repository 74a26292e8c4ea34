//! Integration tests: a real server on a random port, real HTTP, every database test on
//! SQLite and on PostgreSQL (see `support::both_databases!`).

#[macro_use]
mod support;

mod account;
mod api;
mod cli;
mod database;
mod login;
mod security;
mod sessions;
mod setup;
