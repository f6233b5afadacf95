//! Postgres: the connection pool, the migration runner, and `Tx`, the unit of work every
//! write goes through so that its events and its idempotent response commit with it.

use crate::config::ConfigError;
use crate::error::{ApiError, ApiResult};
use crate::events::NewEvent;
use crate::http::{self, ApiResponse};
use crate::idempotency;
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use http::StatusCode;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;

pub type Pool = deadpool_postgres::Pool;
pub type Client = deadpool_postgres::Object;

/// How to reach Postgres: the parsed `DATABASE_URL` and the TLS connector for it.
///
/// TLS follows the URL's `sslmode`, with libpq's `verify-full` checks whenever TLS is used:
/// - `sslmode=require`: always TLS; the server's certificate must chain to `DATABASE_CA_FILE`
///   (a PEM bundle, e.g. RDS's `global-bundle.pem`) or, without one, to the system's roots,
///   and must name the host.
/// - `sslmode=prefer` (the default) with `DATABASE_CA_FILE`: TLS, verified the same way,
///   when the server offers it.
/// - `sslmode=prefer` without a CA file, or `sslmode=disable`: plain TCP, as local mode
///   and tests use. (libpq would encrypt without checking the certificate; an unverified
///   session only looks safe, so Billwire does not pretend.)
#[derive(Clone)]
pub struct Connect {
    pub config: tokio_postgres::Config,
    pub tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl Connect {
    pub fn new(database_url: &str, ca_file: Option<&Path>) -> Result<Connect, ConfigError> {
        let mut config: tokio_postgres::Config =
            database_url.parse().map_err(|e| ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: format!("{e}"),
            })?;
        if config.get_ssl_mode() == SslMode::Prefer && ca_file.is_none() {
            config.ssl_mode(SslMode::Disable);
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let invalid = |reason: String| ConfigError::Invalid {
                    name: "DATABASE_CA_FILE",
                    reason,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(invalid(format!(
                        "{} holds no PEM certificate",
                        path.display()
                    )));
                }
            }
            None if config.get_ssl_mode() == SslMode::Require => {
                // Unreadable entries are skipped; an empty store fails every handshake,
                // which the connection error then reports.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
            None => {}
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: format!("TLS: {e}"),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connect {
            config,
            tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls),
        })
    }
}

/// One pool per process, built once in `main`. Nothing connects until the first `get`.
pub fn pool(connect: &Connect, max_size: usize) -> Result<Pool, ConfigError> {
    let mut pg = connect.config.clone();
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    if pg.get_application_name().is_none() {
        pg.application_name("billwire");
    }
    let manager = Manager::from_config(
        pg,
        connect.tls.clone(),
        ManagerConfig {
            // A connection the server closed (restart, idle timeout) is detected and replaced.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| ConfigError::Invalid {
            name: "DATABASE_URL",
            reason: e.to_string(),
        })
}

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// Any number of processes may call this at once (cold-starting functions, parallel tests,
/// a deploy); an advisory lock lets one apply the migrations while the others wait.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), MigrateError> {
    const MIGRATION_LOCK: i64 = 7_394_461_024_938_240_002;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(client)
        .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    result
        .map(|_| ())
        .map_err(|e| MigrateError::Migration(e.to_string()))
}

/// The names of the embedded migrations, in order (used to name test templates).
pub fn migration_fingerprint() -> String {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| format!("{}:{}", m.version(), m.checksum()))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

/// A write transaction. Domain code runs its statements through it (it derefs to the
/// transaction) and `emit`s the events the write causes; `respond` or `commit` then appends
/// those events (last, so the outbox lock is held as briefly as possible), stores the
/// idempotent response, and commits, all or nothing. Dropping a `Tx` rolls everything back.
pub struct Tx<'c> {
    inner: deadpool_postgres::Transaction<'c>,
    events: Vec<NewEvent>,
    idempotency: Option<idempotency::Claim>,
}

impl<'c> Tx<'c> {
    pub async fn begin(client: &'c mut Client) -> ApiResult<Tx<'c>> {
        Ok(Tx {
            inner: client.transaction().await?,
            events: Vec::new(),
            idempotency: None,
        })
    }

    /// Records that this write causes `event`; it is written when the transaction commits.
    pub fn emit(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// Dates the pending events `at` instead of now (backdated demo data).
    pub fn backdate_events(&mut self, at: chrono::DateTime<chrono::Utc>) {
        for event in &mut self.events {
            event.created_at = Some(at);
        }
    }

    pub(crate) fn claim_idempotency(&mut self, claim: idempotency::Claim) {
        self.idempotency = Some(claim);
    }

    /// Commits and returns the JSON response, storing it first under the request's
    /// Idempotency-Key (if any) so a retry replays it.
    pub async fn respond<T: Serialize>(
        mut self,
        status: StatusCode,
        body: &T,
    ) -> ApiResult<ApiResponse> {
        let body = serde_json::to_string(body).map_err(ApiError::internal)?;
        if let Some(claim) = self.idempotency.take() {
            idempotency::store(&self.inner, &claim, status, &body).await?;
        }
        self.commit().await?;
        Ok(http::raw_json(status, body))
    }

    /// Appends the emitted events and commits; returns the events' ids.
    pub async fn commit(self) -> ApiResult<Vec<i64>> {
        if self.idempotency.is_some() {
            // A claimed key must be committed with its response (`respond`), or a retry
            // would replay an empty one.
            return Err(ApiError::internal(
                "idempotency key claimed but no response stored",
            ));
        }
        let ids = crate::events::append(&self.inner, &self.events).await?;
        self.inner.commit().await?;
        Ok(ids)
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = deadpool_postgres::Transaction<'c>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}
