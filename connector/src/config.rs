//! The connector's settings, from the environment (the same names locally and in AWS).

use shared::platform::config::{database_ca_file, parsed, required, ConfigError, Secret};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// A direct session (LISTEN and the leader's lock need one); may carry a password.
    pub database_url: Secret,
    /// A PEM bundle the database server's certificate must chain to (see `shared::platform::database::Connect`).
    pub database_ca_file: Option<std::path::PathBuf>,
    /// The WebSocket API's management endpoint: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`
    /// in AWS, `http://127.0.0.1:8001` in local mode.
    pub management_endpoint: String,
    /// Names this replica in logs and in `connector_state.leader`.
    pub id: String,
    /// How often to read events even without a NOTIFY, and to check the session.
    pub poll_interval: Duration,
    /// How long a leader's lease runs (renewed every poll): a paused, hung or cut-off
    /// leader is replaced about this long after its last renewal.
    pub lease: Duration,
    /// How often delivery cursors are written back.
    pub cursor_flush_interval: Duration,
    /// Management API requests in flight at once, across all connections; accounts with
    /// requests waiting get slots in turn (`fair`).
    pub send_concurrency: usize,
    /// Per-request timeout; a slower request is retried.
    pub send_timeout: Duration,
    /// Events read per query.
    pub read_batch: i64,
    /// Events waiting per connection before it falls back to catching up from Postgres.
    pub queue_per_connection: usize,
    pub stats_interval: Duration,
    pub pool_size: usize,
    /// How often the leader tidies up: expired idempotency keys and tickets, and
    /// connections API Gateway no longer has.
    pub housekeeping_interval: Duration,
    /// A connection silent this long is asked about (`GetConnection`) and removed if gone:
    /// `$disconnect` is best-effort, and API Gateway closes idle connections after 10 minutes.
    pub stale_after: Duration,
    /// How long a failure no retry fixes (403 from the management API, an endpoint that
    /// cannot be reached, a database refusing the role) may persist before the process
    /// exits non-zero so that it is restarted and the failure is visible.
    pub fatal_after: Duration,
    /// The file `connector health` reads (see `health`).
    pub health_file: std::path::PathBuf,
    /// How often the leader logs CloudWatch metrics (Embedded Metric Format).
    pub metrics_interval: Duration,
    /// The metrics' `Service` dimension (the stack sets `<stack>-connector`).
    pub metrics_service: String,
}

/// Where the health file lives unless `CONNECTOR_HEALTH_FILE` says otherwise.
pub fn default_health_file() -> std::path::PathBuf {
    std::env::temp_dir().join("billwire-connector.health")
}

impl Config {
    /// How often the leader renews its lease: every poll, and at least five times a lease.
    pub fn lease_renew_interval(&self) -> Duration {
        self.poll_interval.min(self.lease / 5)
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let ms = |name, default, range| -> Result<Duration, ConfigError> {
            Ok(Duration::from_millis(parsed(&get, name, default, range)?))
        };
        Ok(Config {
            database_url: Secret::new(required(
                &get,
                "DATABASE_URL",
                "a Postgres URL with a direct session (not a transaction pooler)",
            )?),
            database_ca_file: database_ca_file(&get),
            management_endpoint: required(
                &get,
                "WEBSOCKET_MANAGEMENT_ENDPOINT",
                "the WebSocket API's management endpoint, e.g. http://127.0.0.1:8001 locally",
            )?,
            id: get("CONNECTOR_ID")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(default_id),
            poll_interval: ms("CONNECTOR_POLL_MS", 1000, 50..=60_000)?,
            lease: ms("CONNECTOR_LEASE_MS", 5000, 1000..=600_000)?,
            cursor_flush_interval: ms("CONNECTOR_CURSOR_FLUSH_MS", 250, 10..=10_000)?,
            send_concurrency: parsed(&get, "CONNECTOR_SEND_CONCURRENCY", 64, 1..=4096)?,
            send_timeout: ms("CONNECTOR_SEND_TIMEOUT_MS", 5000, 100..=60_000)?,
            read_batch: parsed(&get, "CONNECTOR_READ_BATCH", 500, 1..=10_000)?,
            queue_per_connection: parsed(&get, "CONNECTOR_QUEUE", 1024, 1..=1_000_000)?,
            stats_interval: Duration::from_secs(parsed(
                &get,
                "CONNECTOR_STATS_SECONDS",
                30,
                1..=3600,
            )?),
            pool_size: parsed(&get, "CONNECTOR_POOL_SIZE", 8, 2..=256)?,
            housekeeping_interval: Duration::from_secs(parsed(
                &get,
                "CONNECTOR_HOUSEKEEPING_SECONDS",
                60,
                1..=86_400,
            )?),
            stale_after: Duration::from_secs(parsed(
                &get,
                "CONNECTOR_STALE_SECONDS",
                600,
                1..=86_400,
            )?),
            fatal_after: ms("CONNECTOR_FATAL_AFTER_MS", 60_000, 100..=3_600_000)?,
            health_file: get("CONNECTOR_HEALTH_FILE")
                .filter(|s| !s.is_empty())
                .map(Into::into)
                .unwrap_or_else(default_health_file),
            metrics_interval: Duration::from_secs(parsed(
                &get,
                "CONNECTOR_METRICS_SECONDS",
                10,
                1..=3600,
            )?),
            metrics_service: get("CONNECTOR_METRICS_SERVICE")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "connector".into()),
        })
    }
}

fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "connector".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_password() {
        let cfg = Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://connector:s3cret-pw@db.internal/billwire".into()),
            "WEBSOCKET_MANAGEMENT_ENDPOINT" => Some("http://127.0.0.1:8001".into()),
            _ => None,
        })
        .expect("config");
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("s3cret-pw"), "{printed}");
        assert!(cfg.database_url.expose().contains("s3cret-pw"));
    }
}
