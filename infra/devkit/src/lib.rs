//! Billwire's development and test kit: everything local mode, the tests and the benchmarks
//! need that a deployed function must not carry.
//!
//! - [`localpg`]: find Postgres, or start a private cluster under `target/pg`.
//! - [`testdb`]: a fresh database per test, and requests sent through the route table.
//! - [`gateway_events`]: API Gateway HTTP API and WebSocket events, built as AWS builds them.
//! - [`faults`]: a TCP proxy between a process and its peer that can cut the connection.
//! - [`secrets`]: local mode's JWT and webhook secrets.

pub mod faults;
pub mod gateway_events;
pub mod localpg;
pub mod secrets;
pub mod testdb;
