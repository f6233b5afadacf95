//! The connector binary. Configured from the environment (see `connector::config`); stops
//! cleanly on SIGTERM or Ctrl-C.

use std::process::ExitCode;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
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
