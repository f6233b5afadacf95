//! The one error type of the library. It says what went wrong in terms a caller can act on
//! (a [`Kind`], a stable `code` and a message that is safe to show) and keeps the underlying
//! cause as its `source`, so that the edge (`api::response`) can map it to a status, answer
//! with JSON and log it once, cause included. Nothing here knows HTTP or logs.

use std::fmt;

/// What kind of failure, as far as the caller is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Malformed request: bad JSON, wrong types, missing or unknown fields, bad query.
    BadRequest,
    /// Well-formed but semantically invalid input.
    Invalid,
    Unauthorized,
    Forbidden,
    NotFound,
    /// The request conflicts with the current state (an illegal state change, a duplicate).
    Conflict,
    TooLarge,
    UnsupportedMediaType,
    /// A dependency (the database) cannot be reached; retrying later may succeed.
    Unavailable,
    /// Our fault; the detail is in the source, never in the message.
    Internal,
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

pub struct Error {
    kind: Kind,
    code: &'static str,
    message: String,
    source: Option<Source>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

const INTERNAL_MESSAGE: &str = "something went wrong on our side; the request was not applied";
const UNAVAILABLE_MESSAGE: &str = "the database is unavailable; retry shortly";

impl Error {
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            code,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::BadRequest, code, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, "validation_failed", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Kind::Unauthorized, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Kind::Forbidden, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound, "not_found", format!("no such {what}"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, code, message)
    }

    /// A failure that is ours, not the caller's: `cause` goes to the log, never to the
    /// client.
    pub fn internal(cause: impl Into<Source>) -> Self {
        Self::new(Kind::Internal, "internal_error", INTERNAL_MESSAGE).with_source(cause)
    }

    /// The database (or another dependency) cannot be reached.
    pub fn unavailable(cause: impl Into<Source>) -> Self {
        Self::new(
            Kind::Unavailable,
            "database_unavailable",
            UNAVAILABLE_MESSAGE,
        )
        .with_source(cause)
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// What the caller is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `{"error":{"code":"...","message":"..."}}`: the body every refusal carries.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code, "message": self.message } })
    }

    /// The cause chain, outermost first, for logs.
    pub fn causes(&self) -> String {
        let mut out = String::new();
        let mut next = self.source.as_deref().map(|s| s as &dyn std::error::Error);
        while let Some(cause) = next {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if self.source.is_some() {
            write!(f, " ({})", self.causes())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// Whether a Postgres error means the session itself failed (network, server restart), as
/// opposed to a statement that failed on a working session.
pub fn is_connection_failure(e: &tokio_postgres::Error) -> bool {
    let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
    e.is_closed() || io
}

/// Whether Postgres gave up waiting: a lock not granted within `lock_timeout` (55P03) or a
/// statement cancelled (57014). The request may well succeed when retried.
pub fn is_timeout(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| matches!(c.code(), "55P03" | "57014"))
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_connection_failure(&e) || is_timeout(&e) {
            Self::unavailable(e)
        } else {
            Self::internal(e)
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::unavailable(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_never_shown_to_the_caller() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = Error::unavailable(io);
        assert_eq!(e.kind(), Kind::Unavailable);
        assert_eq!(e.causes(), "reset by peer");
        assert!(e.to_string().contains("reset by peer"));
        assert!(!e.body().to_string().contains("reset by peer"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
