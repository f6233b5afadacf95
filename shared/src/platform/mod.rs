//! The floor: configuration, the database (pool, TLS, migrations), the error type and
//! telemetry. Nothing here imports from the wings above it.

pub mod config;
pub mod database;
pub mod error;
pub mod secrets;
pub mod telemetry;
