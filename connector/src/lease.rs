//! The leader's side of the lease (`shared::realtime::lease`, docs/architecture.md,
//! "Leader and standby"): a task renews it on the control session, and everything that
//! sends asks [`Lease::valid`] first.
//!
//! The lease ends on the database's clock; the leader never compares clocks. It measures
//! on its own monotonic clock from the moment it *sent* each successful renewal, which is
//! before the database stamped it, and stops sending a fifth of the lease earlier still.
//! The monotonic clock runs on while the process is paused, so a leader woken from SIGSTOP
//! finds its lease over before it sends anything more.

use crate::session::SessionError;
use shared::realtime::lease as store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One leadership's lease, as this replica sees it.
pub struct Lease {
    pub epoch: i64,
    /// Origin of `until`.
    base: Instant,
    /// Nanoseconds after `base` up to which this replica may send.
    until: AtomicU64,
    /// Fired when the lease is lost (not renewed in time, or taken by another replica).
    lost: CancellationToken,
    reason: std::sync::Mutex<Option<String>>,
}

impl Lease {
    /// A lease just taken, by a statement sent at `sent`.
    pub fn new(epoch: i64, sent: Instant, ttl: Duration) -> Arc<Lease> {
        let lease = Lease {
            epoch,
            base: sent,
            until: AtomicU64::new(0),
            lost: CancellationToken::new(),
            reason: Default::default(),
        };
        lease.extend(sent, ttl);
        Arc::new(lease)
    }

    /// Whether this replica may still send: never after the lease may have ended.
    pub fn valid(&self) -> bool {
        !self.is_lost()
            && Instant::now()
                .saturating_duration_since(self.base)
                .as_nanos()
                < self.until.load(Ordering::SeqCst) as u128
    }

    /// Time left to send, zero once over.
    pub fn left(&self) -> Duration {
        let until = self.base + Duration::from_nanos(self.until.load(Ordering::SeqCst));
        until.saturating_duration_since(Instant::now())
    }

    fn extend(&self, sent: Instant, ttl: Duration) {
        let window = ttl - ttl / 5;
        let until = (sent + window).saturating_duration_since(self.base);
        self.until.fetch_max(
            until.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::SeqCst,
        );
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    pub fn lose(&self, why: impl Into<String>) {
        if let Ok(mut reason) = self.reason.lock() {
            reason.get_or_insert_with(|| why.into());
        }
        self.lost.cancel();
    }

    pub fn error(&self) -> SessionError {
        let reason = self
            .reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "the lease was lost".into());
        SessionError::Deposed(reason)
    }
}

/// Renews `lease` once on the control session (the leader calls it every
/// `Config::lease_renew_interval`). A renewal refused (another replica leads), failed (the
/// session is gone) or not answered before the lease would end loses the lease. Once lost,
/// nothing.
pub async fn renew(lease: &Lease, control: &tokio_postgres::Client, ttl: Duration) {
    if lease.is_lost() {
        return;
    }
    if !lease.valid() {
        lease.lose("the lease ran out before it was renewed (was the process paused?)");
        return;
    }
    let sent = Instant::now();
    match tokio::time::timeout(lease.left(), store::renew(control, lease.epoch, ttl)).await {
        Ok(Ok(true)) => lease.extend(sent, ttl),
        Ok(Ok(false)) => lease.lose(format!(
            "another replica took over (epoch {} ended)",
            lease.epoch
        )),
        Ok(Err(e)) => lease.lose(format!("could not renew the lease: {e}")),
        Err(_) => lease.lose("the lease ran out while renewing it (the database did not answer)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_lease_stops_a_fifth_early_and_a_renewal_counts_from_when_it_was_sent() {
        let ttl = Duration::from_secs(5);
        let lease = Lease::new(1, Instant::now(), ttl);
        tokio::time::advance(Duration::from_millis(3_900)).await;
        assert!(lease.valid());
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(!lease.valid(), "valid past 4/5 of the lease");
        // A renewal sent at 3 s (answered late) extends from 3 s, not from now.
        lease.extend(lease.base + Duration::from_secs(3), ttl);
        assert!(lease.valid());
        assert_eq!(lease.left(), Duration::from_millis(2_900));
        // An older renewal never shortens it.
        lease.extend(lease.base, ttl);
        assert_eq!(lease.left(), Duration::from_millis(2_900));
        lease.lose("taken over");
        assert!(!lease.valid());
        assert!(matches!(lease.error(), SessionError::Deposed(r) if r == "taken over"));
    }
}
