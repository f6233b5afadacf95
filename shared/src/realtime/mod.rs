//! Real-time delivery's shared parts: [`tickets`] to connect, the connection [`registry`]
//! with its durable cursors, the typed WebSocket [`protocol`], and [`housekeeping`]. The
//! connector (connector/) and the WebSocket functions (`api::websocket`) are built on these.

pub mod housekeeping;
pub mod lease;
pub mod protocol;
pub mod registry;
pub mod tickets;
