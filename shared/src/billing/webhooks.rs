//! The payment provider's webhook deliveries (`POST /api/v1/payments/webhook`): signatures
//! and what a delivery does.
//!
//! Deliveries are signed Stripe-style. The `Billwire-Signature` header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (several `v1` entries are
//! allowed, for secret rotation). Signatures are compared in constant time and timestamps
//! more than five minutes from now are refused, so a captured delivery cannot be replayed
//! later. A verified `payment_intent.succeeded` or `payment_intent.payment_failed` event
//! settles the payment exactly as `POST /payments/{id}/confirm` would; a redelivered event
//! (same provider event id) changes nothing.

use super::payments::{self, Outcome, Payment};
use super::values::text;
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

pub const SIGNATURE_HEADER: &str = "billwire-signature";
pub const TOLERANCE_SECONDS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value a provider sends for `body` at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a signature header against the raw body at time `now`.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<()> {
    let invalid = |m: &str| Error::bad_request("invalid_signature", m.to_string());
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let timestamp =
        timestamp.ok_or_else(|| invalid("signature header has no valid t= timestamp"))?;
    if signatures.is_empty() {
        return Err(invalid("signature header has no v1= signature"));
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(invalid(
            "signature timestamp is outside the 300 s tolerance",
        ));
    }
    let expected = mac(secret, timestamp, body);
    // `verify_slice` compares in constant time.
    if signatures
        .iter()
        .any(|sig| expected.clone().verify_slice(sig).is_ok())
    {
        Ok(())
    } else {
        Err(invalid("signature does not match the body"))
    }
}

/// A delivery as the provider sends it (other fields are ignored).
#[derive(Deserialize, ToSchema)]
pub struct ProviderEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: ProviderData,
}

#[derive(Deserialize, ToSchema)]
struct ProviderData {
    object: ProviderObject,
}

#[derive(Deserialize, ToSchema)]
struct ProviderObject {
    id: Uuid,
    #[serde(default)]
    last_payment_error: Option<ProviderError>,
}

#[derive(Deserialize, ToSchema)]
struct ProviderError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl ProviderEvent {
    /// The provider's event id and what it means for the payment it names: `None` for the
    /// event types Billwire does not act on.
    pub fn outcome(&self) -> Result<Option<(String, Uuid, Outcome)>> {
        let event_id = text("id", &self.id, 1, 255)?;
        let outcome = match self.kind.as_str() {
            "payment_intent.succeeded" => Outcome::Succeeded,
            "payment_intent.payment_failed" => {
                let error = self.data.object.last_payment_error.as_ref();
                let code = error
                    .and_then(|e| e.code.as_deref())
                    .unwrap_or("card_declined");
                let message = error
                    .and_then(|e| e.message.as_deref())
                    .unwrap_or("The payment was declined.");
                Outcome::Failed {
                    code: text("last_payment_error.code", code, 1, 100)?,
                    message: text("last_payment_error.message", message, 1, 500)?,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some((event_id, self.data.object.id, outcome)))
    }
}

/// What applying a delivery did.
pub struct Applied {
    pub payment: Payment,
    /// The provider sent this event before; nothing changed.
    pub duplicate: bool,
}

/// Settles `payment_id` with `outcome` once per provider event id: a redelivered event
/// changes nothing, and an unknown payment is 404.
pub async fn apply(
    tx: &mut Tx<'_>,
    event_id: &str,
    payment_id: Uuid,
    outcome: Outcome,
) -> Result<Applied> {
    let first_delivery = tx
        .query_opt(
            "INSERT INTO webhook_deliveries (provider_event_id, payment_id)
             SELECT $1, id FROM payments WHERE id = $2
             ON CONFLICT (provider_event_id) DO NOTHING
             RETURNING 1",
            &[&event_id, &payment_id],
        )
        .await?
        .is_some();
    let payment = if first_delivery {
        payments::settle_from_provider(tx, payment_id, outcome).await?
    } else {
        // Either a redelivery (changes nothing) or an unknown payment (404).
        let row = tx
            .query_opt(
                "SELECT 1 FROM webhook_deliveries WHERE provider_event_id = $1 AND payment_id = $2",
                &[&event_id, &payment_id],
            )
            .await?;
        if row.is_none() {
            return Err(Error::not_found("payment"));
        }
        payments::current_for_provider(tx, payment_id).await?
    };
    Ok(Applied {
        payment,
        duplicate: !first_delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_0123456789abcdef";

    #[test]
    fn a_fresh_signature_verifies() {
        let header = sign(SECRET, 1_000, b"{}");
        assert!(verify(SECRET, &header, b"{}", 1_000).is_ok());
        assert!(verify(SECRET, &header, b"{}", 1_000 + TOLERANCE_SECONDS).is_ok());
    }

    #[test]
    fn stale_or_future_timestamps_are_refused() {
        let header = sign(SECRET, 1_000, b"{}");
        assert!(verify(SECRET, &header, b"{}", 1_000 + TOLERANCE_SECONDS + 1).is_err());
        assert!(verify(SECRET, &header, b"{}", 1_000 - TOLERANCE_SECONDS - 1).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        let header = sign(SECRET, 1_000, b"{\"a\":1}");
        assert!(verify(SECRET, &header, b"{\"a\":2}", 1_000).is_err());
        assert!(verify(b"another secret", &header, b"{\"a\":1}", 1_000).is_err());
        let forged = header.replace("t=1000", "t=1001");
        assert!(verify(SECRET, &forged, b"{\"a\":1}", 1_000).is_err());
    }

    #[test]
    fn rotation_accepts_any_listed_signature() {
        let good = sign(SECRET, 1_000, b"x");
        let v1 = good.split("v1=").nth(1).unwrap_or_default();
        let header = format!("t=1000,v1={},v1={v1}", "00".repeat(32));
        assert!(verify(SECRET, &header, b"x", 1_000).is_ok());
    }

    #[test]
    fn malformed_headers_are_refused() {
        for h in ["", "t=abc,v1=00", "v1=00", "t=1000", "t=1000,v1=zz"] {
            assert!(verify(SECRET, h, b"x", 1_000).is_err(), "{h}");
        }
    }
}
