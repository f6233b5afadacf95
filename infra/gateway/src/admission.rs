//! API Gateway admits new WebSocket connections at a bounded rate (by default 500 per
//! second per account and region); past it, the handshake is refused with 429. The local
//! gateway enforces the same, so clients' reconnect backoff is exercised locally.

use std::sync::Mutex;
use std::time::Instant;

/// A token bucket: `rate` new connections a second, up to `rate` at once.
pub struct ConnectRate {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl ConnectRate {
    pub fn new(per_second: u32) -> ConnectRate {
        let rate = f64::from(per_second.max(1));
        ConnectRate {
            rate,
            bucket: Mutex::new((rate, Instant::now())),
        }
    }

    /// Whether one more connection may be admitted now.
    pub fn admit(&self) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return true;
        };
        let (tokens, last) = &mut *bucket;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_rate_is_refused_then_admitted_again() {
        let rate = ConnectRate::new(5);
        let admitted = (0..20).filter(|_| rate.admit()).count();
        assert_eq!(admitted, 5, "the bucket holds one second's worth");
        std::thread::sleep(std::time::Duration::from_millis(450));
        assert!(rate.admit(), "tokens come back at the rate");
    }
}
