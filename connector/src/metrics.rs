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

    /// Logs the CloudWatch metrics as one Embedded Metric Format line on stdout (CloudWatch
    /// Logs turns it into metrics; no SDK call): namespace `Billwire`, dimension
    /// `Service=<service>`, `LeaderPresent` (1 while this replica leads; the alarm fires when
    /// no replica reports it for a minute) and `EventsDelivered` since the last line.
    /// Returns the delivered count to pass next time.
    pub fn emit_cloudwatch(&self, service: &str, delivered_before: u64) -> u64 {
        let delivered = self.events_delivered.load(Relaxed);
        let leader = self.leader.load(Relaxed);
        if leader {
            println!(
                "{}",
                emf_line(
                    service,
                    chrono::Utc::now().timestamp_millis(),
                    1,
                    delivered.saturating_sub(delivered_before)
                )
            );
        }
        delivered
    }
}

/// One Embedded Metric Format document.
pub fn emf_line(
    service: &str,
    timestamp_ms: i64,
    leader_present: u64,
    events_delivered: u64,
) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Billwire",
                "Dimensions": [["Service"]],
                "Metrics": [
                    { "Name": "LeaderPresent", "Unit": "Count" },
                    { "Name": "EventsDelivered", "Unit": "Count" }
                ]
            }]
        },
        "Service": service,
        "LeaderPresent": leader_present,
        "EventsDelivered": events_delivered,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_line_is_embedded_metric_format() {
        let line: serde_json::Value =
            serde_json::from_str(&super::emf_line("shop-connector", 1_700_000_000_000, 1, 42))
                .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Billwire");
        assert_eq!(directive["Dimensions"][0][0], "Service");
        assert_eq!(line["Service"], "shop-connector");
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_number(), "{name} has a value at the root");
        }
        assert_eq!(line["EventsDelivered"], 42);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
