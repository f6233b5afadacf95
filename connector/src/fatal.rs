//! Failures no retry fixes: the management API refusing every request (403, access denied),
//! an endpoint that cannot be reached at all, a database that refuses the connector's role.
//! Retrying them forever would look healthy while nothing is delivered; instead, once one
//! has persisted with no success in between for a bounded time, the connector exits
//! non-zero with a message naming the cause, so ECS restarts it and the failure shows.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Fatal {
    after: Duration,
    since: Mutex<Option<(Instant, String)>>,
}

impl Fatal {
    pub fn new(after: Duration) -> Fatal {
        Fatal {
            after,
            since: Mutex::new(None),
        }
    }

    /// A failure no retry fixes happened; the first one's time and cause are kept.
    pub fn failed(&self, cause: impl Into<String>) {
        if let Ok(mut since) = self.since.lock() {
            if since.is_none() {
                *since = Some((Instant::now(), cause.into()));
            }
        }
    }

    /// Something worked: whatever failed before was not permanent.
    pub fn recovered(&self) {
        if let Ok(mut since) = self.since.lock() {
            *since = None;
        }
    }

    /// The cause, once a failure has persisted for the bounded time.
    pub fn expired(&self) -> Option<String> {
        let since = self.since.lock().ok()?;
        match &*since {
            Some((at, cause)) if at.elapsed() >= self.after => Some(format!(
                "{cause} (for {}s without a single success)",
                at.elapsed().as_secs()
            )),
            _ => None,
        }
    }
}

/// Whether a Postgres error means the server refuses this role or database, as opposed to
/// being unreachable or restarting: invalid authorization (class 28), an unknown database,
/// or missing privileges.
pub fn database_refuses(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|state| {
        let code = state.code();
        code.starts_with("28") || code == "3D000" || code == "42501"
    })
}

/// A Postgres error with the server's own words when it sent any ("role \"x\" does not
/// exist"), not just "db error".
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}): {}", db.severity(), db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failure_that_persists_is_fatal() {
        let fatal = Fatal::new(Duration::from_millis(30));
        fatal.failed("403 Forbidden");
        assert_eq!(fatal.expired(), None);
        std::thread::sleep(Duration::from_millis(40));
        fatal.failed("a later cause does not restart the clock");
        let cause = fatal.expired().unwrap();
        assert!(cause.starts_with("403 Forbidden"), "{cause}");
        fatal.recovered();
        assert_eq!(fatal.expired(), None);
    }
}
