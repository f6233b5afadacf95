//! The connector binary. Configured from the environment (see `connector::config`); stops
//! cleanly on SIGTERM or Ctrl-C, and exits 1 when a failure no retry fixes persists.
//!
//! `connector health` is the container's health check: exit 0 when the running connector's
//! database session answered recently (see `connector::health`), 1 otherwise.

use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("health") {
        let path = std::env::var_os("CONNECTOR_HEALTH_FILE")
            .filter(|p| !p.is_empty())
            .map(Into::into)
            .unwrap_or_else(connector::config::default_health_file);
        return match connector::health::check(&path) {
            Ok(role) => {
                println!("healthy: {role}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("unhealthy: {why}");
                ExitCode::FAILURE
            }
        };
    }
    shared::platform::telemetry::init();
    let config = match connector::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            eprintln!("connector: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("connector: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("shutdown requested");
            shutdown.cancel();
        }
    });
    match connector::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("connector: {e}");
            ExitCode::FAILURE
        }
    }
}
