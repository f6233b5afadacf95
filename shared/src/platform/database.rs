//! Postgres: how to reach it (TLS included), the connection pool, and the migration runner.
//! Writes go through `store::Tx`, built on the clients this pool hands out.

use super::config::{Config, ConfigError};
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, RecyclingMethod, Runtime};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
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
    /// Settings every new session applies with `SET` before the pool hands it out (see
    /// [`Connect::from_config`]); `None` leaves sessions as the server starts them.
    pub session_settings: Option<Arc<str>>,
}

impl Connect {
    /// How to reach the database a function's `Config` names.
    pub fn from_config(config: &Config) -> Result<Connect, ConfigError> {
        let mut connect = Connect::new(
            config.database_url.expose(),
            config.database_ca_file.as_deref(),
        )?;
        // Every session a function opens: a stalled writer is ended, and nobody waits on a
        // lock forever (docs/architecture.md, "Gap-free ids"). Applied with SET once per new
        // session, not as startup `options`: RDS Proxy and PgBouncer refuse a session whose
        // startup packet carries `options` (docs/architecture.md, "Through a pooler").
        connect.session_settings = Some(
            format!(
                "SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}",
                config.db_lock_timeout.as_millis(),
                config.db_idle_in_transaction_timeout.as_millis()
            )
            .into(),
        );
        Ok(connect)
    }

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
            session_settings: None,
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
    let mut builder = Pool::builder(manager);
    if let Some(settings) = connect.session_settings.clone() {
        builder = builder.post_create(Hook::async_fn(move |client, _| {
            let settings = settings.clone();
            Box::pin(async move {
                client
                    .batch_execute(&settings)
                    .await
                    .map_err(HookError::Backend)
            })
        }));
    }
    builder
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
    // Migrations wait for each other and may wait on DDL locks: the request timeouts of
    // the functions' sessions do not apply (RESET restores them).
    client
        .batch_execute("SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0")
        .await?;
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
    client
        .batch_execute("RESET lock_timeout; RESET idle_in_transaction_session_timeout")
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

/// Deletes up to 10,000 rows of `table` matching `expired` (an SQL condition written by
/// the caller, never by a client): housekeeping that never holds a long lock. Returns how
/// many rows went.
pub async fn delete_batch(
    db: &impl deadpool_postgres::GenericClient,
    table: &'static str,
    expired: &'static str,
) -> crate::platform::error::Result<u64> {
    Ok(db
        .execute(
            &format!(
                "DELETE FROM {table} WHERE ctid IN
                   (SELECT ctid FROM {table} WHERE {expired} LIMIT 10000)"
            ),
            &[],
        )
        .await?)
}
