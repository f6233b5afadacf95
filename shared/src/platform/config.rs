//! Configuration from the environment, read once in `main`.
//!
//! Every value has one name, the same locally and in AWS. Missing or malformed values fail
//! start-up with a message that names the variable and says what it should hold.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A value that must never reach a log: its `Debug` says `<redacted>`; `expose` is the one
/// way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What every API function needs.
#[derive(Clone)]
pub struct Config {
    /// May carry a password.
    pub database_url: Secret,
    /// A PEM bundle the database server's certificate must chain to (see `database::Connect`).
    pub database_ca_file: Option<std::path::PathBuf>,
    pub db_pool_size: usize,
    /// How long a statement waits for a lock (the outbox's included) before it gives up
    /// with a 503: one stalled writer cannot hold every tenant's writes.
    pub db_lock_timeout: Duration,
    /// How long a session may sit idle inside a transaction before Postgres ends it,
    /// releasing its locks. Shorter than `db_lock_timeout`, so that the writers waiting
    /// behind a stalled one get through.
    pub db_idle_in_transaction_timeout: Duration,
    pub jwt: JwtSettings,
    /// Signs payment-provider webhooks; only the webhook function needs it.
    pub webhook_secret: Option<Vec<u8>>,
    /// The WebSocket API's URL (`wss://...`), returned with tickets when set.
    pub websocket_url: Option<String>,
    /// What CloudFront sends as `X-Billwire-Origin` on every request it passes to the HTTP
    /// API. When set, a request without it (sent straight to the `execute-api` URL, around
    /// CloudFront and its WAF) is refused before any work (`api::lambda::dispatch`).
    pub origin_secret: Option<Secret>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password; secrets never reach a log.
        f.debug_struct("Config")
            .field("database_url", &"<redacted>")
            .field("database_ca_file", &self.database_ca_file)
            .field("db_pool_size", &self.db_pool_size)
            .field("db_lock_timeout", &self.db_lock_timeout)
            .field(
                "db_idle_in_transaction_timeout",
                &self.db_idle_in_transaction_timeout,
            )
            .field("jwt", &self.jwt)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("origin_secret", &self.origin_secret)
            .finish()
    }
}

#[derive(Clone)]
pub struct JwtSettings {
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    /// How long a refresh token (single-use, rotated) stays valid.
    pub refresh_token_ttl: Duration,
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .finish()
    }
}

pub const MIN_SECRET_BYTES: usize = 32;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get`, so tests can supply values without touching
    /// the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database_url = required(
            &get,
            "DATABASE_URL",
            "a Postgres URL such as postgres://postgres@127.0.0.1:5432/billwire",
        )?;
        let secret = required(
            &get,
            "JWT_SECRET",
            "a random secret of at least 32 bytes, e.g. `openssl rand -hex 32`",
        )?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                reason: format!("must be at least {MIN_SECRET_BYTES} bytes long"),
            });
        }
        Ok(Config {
            database_url: Secret::new(database_url),
            database_ca_file: database_ca_file(&get),
            db_pool_size: parsed(&get, "DB_POOL_SIZE", 2, 1..=64)?,
            db_lock_timeout: Duration::from_millis(parsed(
                &get,
                "DB_LOCK_TIMEOUT_MS",
                10_000,
                100..=600_000,
            )?),
            db_idle_in_transaction_timeout: Duration::from_millis(parsed(
                &get,
                "DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                5_000,
                100..=600_000,
            )?),
            jwt: JwtSettings {
                secret: secret.into_bytes(),
                issuer: get("JWT_ISSUER").unwrap_or_else(|| "billwire".into()),
                audience: get("JWT_AUDIENCE").unwrap_or_else(|| "billwire-api".into()),
                access_token_ttl: Duration::from_secs(parsed(
                    &get,
                    "ACCESS_TOKEN_TTL_SECONDS",
                    900,
                    60..=86_400,
                )?),
                refresh_token_ttl: Duration::from_secs(parsed(
                    &get,
                    "REFRESH_TOKEN_TTL_SECONDS",
                    14 * 86_400,
                    300..=90 * 86_400,
                )?),
            },
            webhook_secret: get("WEBHOOK_SECRET")
                .filter(|s| !s.is_empty())
                .map(String::into_bytes),
            websocket_url: get("WEBSOCKET_URL").filter(|s| !s.is_empty()),
            origin_secret: get("ORIGIN_VERIFY_SECRET")
                .filter(|s| !s.is_empty())
                .map(Secret::new),
        })
    }

    /// The webhook secret, or a start-up error for the function that cannot run without it.
    pub fn require_webhook_secret(&self) -> Result<&[u8], ConfigError> {
        match &self.webhook_secret {
            Some(s) if s.len() >= 16 => Ok(s),
            Some(_) => Err(ConfigError::Invalid {
                name: "WEBHOOK_SECRET",
                reason: "must be at least 16 bytes long".into(),
            }),
            None => Err(ConfigError::Missing {
                name: "WEBHOOK_SECRET",
                hint: "the secret your payment provider signs webhooks with",
            }),
        }
    }
}

/// `DATABASE_CA_FILE`: the PEM bundle the database's certificate must chain to (`database::Connect`).
pub fn database_ca_file(get: impl Fn(&str) -> Option<String>) -> Option<std::path::PathBuf> {
    get("DATABASE_CA_FILE")
        .filter(|s| !s.is_empty())
        .map(Into::into)
}

pub fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    hint: &'static str,
) -> Result<String, ConfigError> {
    match get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing { name, hint }),
    }
}

/// An optional numeric variable with a default and an allowed range.
pub fn parsed<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    let value: T = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        name,
        reason: format!("expected a number, got {raw:?}"),
    })?;
    if !range.contains(&value) {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is outside {}..={}", range.start(), range.end()),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn missing_database_url_names_the_variable() {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", SECRET)])).unwrap_err();
        assert!(
            err.to_string().starts_with("DATABASE_URL is not set"),
            "{err}"
        );
    }

    #[test]
    fn short_secret_is_rejected() {
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", "short"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET is invalid"), "{err}");
    }

    #[test]
    fn out_of_range_number_is_rejected() {
        let err = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
            ("DB_POOL_SIZE", "0"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DB_POOL_SIZE"), "{err}");
    }

    #[test]
    fn debug_prints_no_secret() {
        let cfg = Config::from_lookup(lookup(&[
            (
                "DATABASE_URL",
                "postgres://app:hunter2-password@db.internal/billwire",
            ),
            ("JWT_SECRET", SECRET),
            ("WEBHOOK_SECRET", "whsec_0123456789abcdef"),
            ("ORIGIN_VERIFY_SECRET", "origin0123456789secret"),
        ]))
        .unwrap();
        let printed = format!("{cfg:?} {:?}", cfg.jwt);
        for secret in [
            "hunter2-password",
            SECRET,
            "whsec_0123456789abcdef",
            "origin0123456789secret",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn defaults_apply() {
        let cfg = Config::from_lookup(lookup(&[
            ("DATABASE_URL", "postgres://x"),
            ("JWT_SECRET", SECRET),
        ]))
        .unwrap();
        assert_eq!(cfg.db_pool_size, 2);
        assert_eq!(cfg.jwt.access_token_ttl, Duration::from_secs(900));
        assert_eq!(cfg.jwt.issuer, "billwire");
    }
}
