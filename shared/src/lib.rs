//! Billwire's library. Function binaries are thin: they call [`lambda::serve`] with one of
//! the `api` handlers below. Everything else lives here, in modules named after the domain:
//!
//! - [`accounts`]: merchant accounts and their users (sign-up)
//! - [`auth`]: access tokens, passwords, login, `me`
//! - [`plans`], [`payments`], [`webhooks`], [`invoices`], [`customers`], [`stats`]
//! - [`events`]: the outbox and its gap-free reader
//! - [`connections`]: WebSocket tickets, the `$connect`/`$disconnect`/`$default` handlers, and
//!   the connection registry the connector delivers from
//! - [`idempotency`]: `Idempotency-Key` on POSTs
//! - [`db`], [`config`], [`http`], [`error`], [`types`], [`telemetry`], [`lambda`]: plumbing
//! - [`demo`]: demo data; [`localpg`]: finding or starting Postgres for local work

pub mod accounts;
pub mod apigw;
pub mod app;
pub mod auth;
pub mod config;
pub mod connections;
pub mod customers;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod invoices;
pub mod lambda;
pub mod localpg;
pub mod payments;
pub mod plans;
pub mod stats;
pub mod telemetry;
pub mod types;
pub mod webhooks;

#[cfg(feature = "testing")]
pub mod testing;

pub use app::App;
pub use error::{ApiError, ApiResult};
