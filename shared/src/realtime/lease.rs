//! Leadership of the connector as a lease with an epoch, kept in `connector_state`
//! (docs/architecture.md, "Leader and standby").
//!
//! The session-level advisory lock decides who may lead; it alone is not enough, because a
//! leader that is paused (SIGSTOP, a frozen VM) or cut off without a FIN keeps its session,
//! and so the lock, for as long as its kernel answers keepalives. So the leader also holds a
//! lease that ends at a time on the database's clock, and renews it every poll. A standby
//! that finds the lease ended ends the holder's sessions ([`end_expired_holder`]): the lock
//! is released and the standby takes it under a new epoch ([`take`]). Every registry write a
//! leader makes names its epoch and is refused once another leader has taken over
//! (`registry::activate` and friends).
//!
//! Ending another session takes the same database role, or membership in
//! `pg_signal_backend`; every replica connects as the same role, so nothing else is needed.

use crate::platform::error::Result;
use std::time::Duration;
use tokio_postgres::Client;

/// What taking the lease found.
#[derive(Debug, Clone, PartialEq)]
pub struct Takeover {
    /// The new leadership's epoch: larger than every earlier one.
    pub epoch: i64,
    /// The previous holder's application name, which all its sessions carry.
    pub previous_holder: Option<String>,
    /// Sessions of the previous holder still open (a paused or cut-off process, perhaps).
    pub stale_sessions: i64,
    /// How long the previous holder's lease still runs: until then it may still be sending.
    pub previous_lease_left: Duration,
}

/// Called by the session that has just taken the advisory lock: starts a new epoch with this
/// session as holder and a lease of `ttl` from the database's now.
pub async fn take(db: &Client, leader: &str, ttl: Duration) -> Result<Takeover> {
    let row = db
        .query_one(
            "WITH old AS (SELECT holder_app, lease_until FROM connector_state WHERE id = 1 FOR UPDATE)
             UPDATE connector_state s
                SET epoch = s.epoch + 1, leader = $1, holder_pid = pg_backend_pid(),
                    holder_app = current_setting('application_name'),
                    lease_until = now() + make_interval(secs => $2), heartbeat_at = now()
               FROM old
              WHERE s.id = 1
          RETURNING s.epoch, old.holder_app,
                    (SELECT count(*) FROM pg_stat_activity a
                      WHERE a.application_name = old.holder_app AND a.pid <> pg_backend_pid()
                        AND a.datname = current_database()),
                    coalesce(extract(epoch FROM greatest(old.lease_until - now(), interval '0'))
                             * 1000, 0)::float8",
            &[&leader, &ttl.as_secs_f64()],
        )
        .await?;
    let left_ms: f64 = row.try_get(3)?;
    Ok(Takeover {
        epoch: row.try_get(0)?,
        previous_holder: row.try_get(1)?,
        stale_sessions: row.try_get(2)?,
        previous_lease_left: Duration::from_millis(left_ms.max(0.0) as u64),
    })
}

/// Extends the lease of `epoch` to `ttl` from the database's now. `false`: this session no
/// longer holds it (another leader took over).
pub async fn renew(db: &Client, epoch: i64, ttl: Duration) -> Result<bool> {
    Ok(db
        .execute(
            "UPDATE connector_state
                SET lease_until = now() + make_interval(secs => $2), heartbeat_at = now()
              WHERE id = 1 AND epoch = $1 AND holder_pid = pg_backend_pid()",
            &[&epoch, &ttl.as_secs_f64()],
        )
        .await?
        == 1)
}

/// Ends the lease at once (a leader stepping down), so the next leader need not wait for it.
pub async fn release(db: &Client, epoch: i64) -> Result<()> {
    db.execute(
        "UPDATE connector_state SET lease_until = now() WHERE id = 1 AND epoch = $1",
        &[&epoch],
    )
    .await?;
    Ok(())
}

/// Ends the sessions of a leader whose lease has ended (or was never taken): whoever holds
/// `lock`, and every session with the holder's application name. Waits up to `wait` for
/// each to exit. Returns how many were ended; 0 while the lease runs.
pub async fn end_expired_holder(db: &Client, lock: i64, wait: Duration) -> Result<i64> {
    let (class, object) = lock_parts(lock);
    let row = db
        .query_one(
            "WITH s AS (SELECT holder_app FROM connector_state
                         WHERE id = 1 AND (lease_until IS NULL OR lease_until < now())),
                  holders AS (
                    SELECT l.pid FROM pg_locks l, s
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2
                    UNION
                    SELECT a.pid FROM pg_stat_activity a, s
                     WHERE a.application_name = s.holder_app AND a.datname = current_database())
             SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $3))
               FROM holders WHERE pid <> pg_backend_pid()",
            &[&class, &object, &(wait.as_millis() as i64)],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Ends every session named `application_name` but this one (a deposed holder's, found
/// still open when its successor took over). Returns how many were ended.
pub async fn end_sessions(db: &Client, application_name: &str, wait: Duration) -> Result<i64> {
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $2))
               FROM pg_stat_activity
              WHERE application_name = $1 AND pid <> pg_backend_pid()
                AND datname = current_database()",
            &[&application_name, &(wait.as_millis() as i64)],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// A bigint advisory lock as `pg_locks` shows it: (classid, objid), objsubid 1.
pub fn lock_parts(lock: i64) -> (i64, i64) {
    (
        (lock >> 32) as u32 as i64,
        (lock & 0xffff_ffff) as u32 as i64,
    )
}
