//! Billwire's development and test kit: everything local mode, the tests and the benchmarks
//! need that a deployed function must not carry.
//!
//! - [`localpg`]: find Postgres, or start a private cluster under `target/pg`.
//! - [`testdb`]: a fresh database per test, and requests sent through the route table.
//! - [`gateway_events`]: API Gateway HTTP API and WebSocket events, built as AWS builds them.
//! - [`faults`]: a TCP proxy between a process and its peer that can cut the connection.
//! - [`secrets`]: local mode's JWT and webhook secrets.
//! - [`supervisor`]: starts the stack's processes so that they die with their parent however
//!   it ends; [`ports`] says who holds a port; [`tools`] installs the tools the stack runs
//!   (cargo-lambda).

pub mod faults;
pub mod gateway_events;
pub mod localpg;
pub mod ports;
pub mod procfs;
pub mod secrets;
pub mod supervisor;
pub mod testdb;
pub mod tools;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The workspace root (this crate is `infra/devkit`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}

/// Polls `done` every `every` until it holds or `timeout` passes; whether it held. Tests
/// and tools wait for a condition with a generous deadline this way, never for a fixed time.
pub fn wait_until(timeout: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}

/// [`wait_until`] for async code: the same polling, sleeping on the runtime.
pub async fn eventually(
    timeout: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
