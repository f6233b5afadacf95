//! Counters the connector keeps and logs periodically as one structured line.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Events read by the fan-out.
    pub events_read: AtomicU64,
    /// Events delivered, counting each recipient.
    pub events_delivered: AtomicU64,
    /// Management API requests that succeeded (one message may carry several events).
    pub messages_sent: AtomicU64,
    /// Management API requests that failed and were retried.
    pub send_failures: AtomicU64,
    /// Connections removed after `410 Gone`.
    pub connections_gone: AtomicU64,
    /// Connections with a delivery task.
    pub connections: AtomicI64,
    /// Milliseconds from an event's commit to its fan-out, for the latest batch.
    pub lag_ms: AtomicI64,
    /// The newest event id the fan-out has read.
    pub head: AtomicI64,
    pub leader: AtomicBool,
}

impl Metrics {
    pub fn log(&self, id: &str) {
        tracing::info!(
            connector = id,
            leader = self.leader.load(Relaxed),
            events_read = self.events_read.load(Relaxed),
            events_delivered = self.events_delivered.load(Relaxed),
            messages_sent = self.messages_sent.load(Relaxed),
            send_failures = self.send_failures.load(Relaxed),
            connections_gone = self.connections_gone.load(Relaxed),
            connections = self.connections.load(Relaxed),
            head = self.head.load(Relaxed),
            lag_ms = self.lag_ms.load(Relaxed),
            "connector stats"
        );
    }
}
