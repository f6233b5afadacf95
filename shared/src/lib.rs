//! Billwire's library, in wings whose imports point down (docs/architecture.md, "Code
//! layout"):
//!
//! - [`platform`]: configuration, the database (pool, TLS, migrations), the error type,
//!   telemetry. Imports nothing above it.
//! - [`store`]: the write path: `Tx`, the event outbox, idempotency keys.
//! - [`billing`]: the domain rules (accounts, auth, plans, payments, invoices, customers,
//!   stats, webhooks). Knows nothing of HTTP.
//! - [`realtime`]: WebSocket tickets, the connection registry, the typed protocol.
//! - [`api`]: the edge: HTTP and WebSocket handlers, the route table, error mapping.
//!
//! Function binaries are one line: `shared::api::serve(env!("CARGO_PKG_NAME"))`.

pub mod api;
pub mod billing;
pub mod platform;
pub mod realtime;
pub mod store;
