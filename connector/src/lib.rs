//! The connector: the one long-lived process of Billwire. It holds a direct Postgres session,
//! competes for leadership with an advisory lock, LISTENs for wake-ups, and delivers every
//! event to every connection allowed to see it (docs/architecture.md, "Leader and standby", "Durable cursors", "Scoping").
//!
//! - [`session`]: the control session (lock + LISTEN)
//! - [`lease`]: the leader's lease, renewed beside the loop and checked before every send
//! - [`leader`]: fan-out and connection bookkeeping while leading
//! - [`delivery`]: one ordered delivery task per connection
//! - [`sender`]: the API Gateway management API client
//! - [`metrics`]: counters, logged periodically, and CloudWatch metrics
//! - [`health`]: what `connector health` (the container's health check) reads
//! - [`fatal`]: failures no retry fixes, which end the process after a bounded time

pub mod config;
pub mod delivery;
pub mod fair;
pub mod fatal;
pub mod health;
pub mod leader;
pub mod lease;
pub mod metrics;
pub mod sender;
pub mod session;

use config::Config;
use delivery::Shared;
use fatal::Fatal;
use health::Health;
use metrics::Metrics;
use sender::Sender;
use session::Session;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the connector stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] shared::platform::config::ConfigError),
    /// A failure no retry fixes persisted (see [`fatal`]).
    #[error("giving up: {0}")]
    Fatal(String),
}

/// Runs until `shutdown` fires: as a standby while another replica leads, as the leader
/// otherwise. Losing the database only pauses it; it reconnects with backoff. A failure no
/// retry fixes ends it with [`RunError::Fatal`] once it has lasted `fatal_after`.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let stop = shutdown.child_token();
    let fatal = Arc::new(Fatal::new(cfg.fatal_after));
    let health = Arc::new(Health::new(cfg.health_file.clone()));
    let watchdog = tokio::spawn({
        let (fatal, stop) = (fatal.clone(), stop.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tick.tick() => {}
                }
                if let Some(cause) = fatal.expired() {
                    tracing::error!(cause, "a failure no retry fixes persisted; exiting");
                    stop.cancel();
                    return Some(cause);
                }
            }
        }
    });
    let fresh = tokio::spawn({
        let (health, stop) = (health.clone(), stop.clone());
        async move { health.keep_fresh(stop).await }
    });
    let result = serve(&cfg, &stop, &fatal, &health).await;
    stop.cancel();
    let _ = fresh.await;
    match watchdog.await {
        Ok(Some(cause)) => Err(RunError::Fatal(cause)),
        _ => result,
    }
}

async fn serve(
    cfg: &Config,
    shutdown: &CancellationToken,
    fatal: &Arc<Fatal>,
    health: &Health,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::default());
    let mut connect = shared::platform::database::Connect::new(
        cfg.database_url.expose(),
        cfg.database_ca_file.as_deref(),
    )?;
    let application_name = session::application_name(&cfg.id);
    session::configure(&mut connect, &application_name);
    let pool = shared::platform::database::pool(&connect, cfg.pool_size)?;
    // The leader loop's own, so that it never queues behind delivery tasks (leader.rs).
    let leader_pool = shared::platform::database::pool(&connect, 2)?;
    let sender = Sender::new(
        &cfg.management_endpoint,
        cfg.send_concurrency,
        cfg.send_timeout,
        metrics.clone(),
        fatal.clone(),
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
    let cloudwatch = tokio::spawn({
        let (metrics, every, service, shutdown) = (
            metrics.clone(),
            cfg.metrics_interval,
            cfg.metrics_service.clone(),
            shutdown.clone(),
        );
        async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            let mut delivered = 0;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => delivered = metrics.emit_cloudwatch(&service, delivered),
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
        let mut session = match Session::connect(&connect).await {
            Ok(s) => {
                fatal.recovered();
                s
            }
            Err(e) => {
                if let session::SessionError::Db(db) = &e {
                    if fatal::database_refuses(db) {
                        fatal.failed(format!(
                            "Postgres refuses the connector: {}: check DATABASE_URL's role, password and database, and the role's privileges",
                            fatal::describe(db)
                        ));
                    }
                }
                tracing::warn!(connector = cfg.id, error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot reach Postgres");
                sleep_or_shutdown(backoff, shutdown).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        tracing::info!(connector = cfg.id, "standing by for leadership");
        match session
            .acquire_leadership(Duration::from_millis(500), shutdown, health)
            .await
        {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::warn!(connector = cfg.id, error = %e, "lost the session while standing by");
                sleep_or_shutdown(backoff, shutdown).await;
                continue;
            }
        }
        backoff = Duration::from_millis(200);
        let lease = match take_lease(cfg, &session, &application_name, shutdown).await {
            Ok(Some(lease)) => lease,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(connector = cfg.id, error = %e, "could not take the lease");
                continue;
            }
        };
        metrics.leader.store(true, Relaxed);
        tracing::info!(connector = cfg.id, epoch = lease.epoch, "became leader");
        health.beat(true);
        let epoch = lease.epoch;
        let outcome = leader::lead(
            cfg,
            shared.clone(),
            leader_pool.clone(),
            lease,
            &mut session,
            shutdown,
            health,
        )
        .await;
        metrics.leader.store(false, Relaxed);
        match outcome {
            Ok(()) => {
                // Hand over at once rather than when the lease runs out or the session's
                // backend notices we left.
                let _ = shared::realtime::lease::release(&session.client, epoch).await;
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
    cloudwatch.abort();
    tracing::info!(connector = cfg.id, "connector stopped");
    Ok(())
}

/// Takes the lease under a new epoch, holding the lock. If the previous holder was another
/// process and some of its sessions are still open (it may be paused or cut off, not
/// dead), ends them and waits until its lease has run out: until then it may still send.
/// `Ok(None)`: shut down first.
async fn take_lease(
    cfg: &Config,
    session: &Session,
    application_name: &str,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<lease::Lease>>, shared::platform::error::Error> {
    use shared::realtime::lease as store;
    let sent = tokio::time::Instant::now();
    let taken = store::take(&session.client, &cfg.id, cfg.lease).await?;
    let lease = lease::Lease::new(taken.epoch, sent, cfg.lease);
    let Some(previous) = taken.previous_holder.filter(|p| p != application_name) else {
        return Ok(Some(lease));
    };
    if taken.stale_sessions > 0 {
        let ended = store::end_sessions(&session.client, &previous, Duration::from_secs(5)).await?;
        tracing::warn!(
            connector = cfg.id,
            previous,
            sessions = ended,
            waiting_ms = taken.previous_lease_left.as_millis() as u64,
            "the previous leader still had sessions open; ended them and waiting out its lease"
        );
        // Keep our own lease meanwhile, so no standby takes us for stale.
        let until = tokio::time::Instant::now() + taken.previous_lease_left;
        while tokio::time::Instant::now() < until {
            let step = until
                .saturating_duration_since(tokio::time::Instant::now())
                .min(cfg.lease_renew_interval());
            if !sleep_or_shutdown(step, shutdown).await {
                return Ok(None);
            }
            lease::renew(&lease, &session.client, cfg.lease).await;
            if lease.is_lost() {
                return Err(shared::platform::error::Error::unavailable(
                    lease.error().to_string(),
                ));
            }
        }
    }
    Ok(Some(lease))
}

/// Sleeps `d`; `false` if shutdown came first.
async fn sleep_or_shutdown(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
