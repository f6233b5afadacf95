//! The connector: the one long-lived process of Billwire. It holds a direct Postgres session,
//! competes for leadership with an advisory lock, LISTENs for wake-ups, and delivers every
//! event to every connection allowed to see it (docs/architecture.md, "Leader and standby", "Durable cursors", "Scoping").
//!
//! - [`session`]: the control session (lock + LISTEN)
//! - [`leader`]: fan-out and connection bookkeeping while leading
//! - [`delivery`]: one ordered delivery task per connection
//! - [`sender`]: the API Gateway management API client
//! - [`metrics`]: counters, logged periodically

pub mod config;
pub mod delivery;
pub mod leader;
pub mod metrics;
pub mod sender;
pub mod session;

use config::Config;
use delivery::Shared;
use metrics::Metrics;
use sender::Sender;
use session::Session;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown` fires: as a standby while another replica leads, as the leader
/// otherwise. Losing the database only pauses it; it reconnects with backoff.
pub async fn run(
    cfg: Config,
    shutdown: CancellationToken,
) -> Result<(), shared::platform::config::ConfigError> {
    let metrics = Arc::new(Metrics::default());
    let connect = shared::platform::database::Connect::new(
        cfg.database_url.expose(),
        cfg.database_ca_file.as_deref(),
    )?;
    let pool = shared::platform::database::pool(&connect, cfg.pool_size)?;
    let sender = Sender::new(
        &cfg.management_endpoint,
        cfg.send_concurrency,
        cfg.send_timeout,
        metrics.clone(),
    )
    .await;
    let shared = Arc::new(Shared {
        pool,
        sender,
        metrics: metrics.clone(),
        progress: Default::default(),
        read_batch: cfg.read_batch,
        queue: cfg.queue_per_connection,
    });
    let stats = tokio::spawn({
        let (metrics, id, every, shutdown) = (
            metrics.clone(),
            cfg.id.clone(),
            cfg.stats_interval,
            shutdown.clone(),
        );
        async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => metrics.log(&id),
                }
            }
        }
    });

    tracing::info!(
        connector = cfg.id,
        endpoint = cfg.management_endpoint,
        "connector starting"
    );
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let mut session = match Session::connect(&connect, &cfg.id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(connector = cfg.id, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach Postgres");
                sleep_or_shutdown(backoff, &shutdown).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        tracing::info!(connector = cfg.id, "standing by for leadership");
        match session
            .acquire_leadership(Duration::from_millis(500), &shutdown)
            .await
        {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(connector = cfg.id, error = %e, "lost the session while standing by");
                sleep_or_shutdown(backoff, &shutdown).await;
                continue;
            }
        }
        backoff = Duration::from_millis(200);
        metrics.leader.store(true, Relaxed);
        tracing::info!(connector = cfg.id, "became leader");
        let outcome = leader::lead(&cfg, shared.clone(), &mut session, &shutdown).await;
        metrics.leader.store(false, Relaxed);
        match outcome {
            Ok(()) => {
                // Hand over at once rather than when the session's backend notices we left.
                let _ = session
                    .client
                    .execute("SELECT pg_advisory_unlock($1)", &[&session::LEADER_LOCK])
                    .await;
                tracing::info!(connector = cfg.id, "stepping down")
            }
            Err(e) => tracing::warn!(connector = cfg.id, error = %e, "lost leadership"),
        }
        // Dropping the session releases the lock at once for a standby.
        drop(session);
    }
    metrics.log(&cfg.id);
    stats.abort();
    tracing::info!(connector = cfg.id, "connector stopped");
    Ok(())
}

async fn sleep_or_shutdown(d: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}
