//! `POST /api/v1/payments/webhook`: the payment provider's signed deliveries.

use super::idempotency;
use super::request::{body_bytes, json_body};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::webhooks::{self, ProviderEvent, SIGNATURE_HEADER};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;

/// Verifies the signature, then settles the payment the event names exactly as
/// `POST /payments/{id}/confirm` would; a redelivered event changes nothing.
pub async fn receive(app: App, req: Request) -> Result<ApiResponse> {
    let secret = app
        .config
        .webhook_secret
        .as_deref()
        .ok_or_else(|| Error::internal("WEBHOOK_SECRET is not configured"))?;
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::bad_request("invalid_signature", "missing Billwire-Signature header")
        })?;
    webhooks::verify(
        secret,
        header,
        body_bytes(&req),
        chrono::Utc::now().timestamp(),
    )?;
    let event: ProviderEvent = json_body(&req)?;
    // Providers send many event types; acknowledging the ones we do not handle stops them
    // from being retried.
    let Some((event_id, payment_id, outcome)) = event.outcome()? else {
        return json(
            StatusCode::OK,
            &serde_json::json!({ "received": true, "handled": false }),
        );
    };
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, None).await? {
        return Ok(replay);
    }
    let applied = webhooks::apply(&mut tx, &event_id, payment_id, outcome).await?;
    commit(
        tx,
        StatusCode::OK,
        &serde_json::json!({
            "received": true,
            "handled": true,
            "duplicate": applied.duplicate,
            "payment": applied.payment,
        }),
    )
    .await
}
