//! Test and benchmark support for the real-time path: [`stack`] runs the whole system as
//! real processes against a fresh database; [`client`] is a WebSocket client that behaves
//! like a dashboard.

pub mod browser;
pub mod client;
pub mod stack;
