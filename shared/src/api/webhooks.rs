//! `POST /api/v1/payments/webhook`: the payment provider's signed deliveries.

use super::idempotency;
use super::openapi_parts;
use super::request::{body_bytes, json_body};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::payments::Payment;
use crate::billing::webhooks::{self, ProviderEvent, SIGNATURE_HEADER};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use utoipa::ToSchema;

/// Verifies the signature, then settles the payment the event names exactly as
/// `POST /payments/{id}/confirm` would; a redelivered event changes nothing.
///
/// Signed by the provider, not by a user: `Billwire-Signature: t=<unix>,v1=<hex HMAC-SHA256
/// of "t.body">`, 300 s tolerance. Event types other than `payment_intent.succeeded` and
/// `payment_intent.payment_failed` are acknowledged with `handled: false`.
#[utoipa::path(
    post,
    path = "/api/v1/payments/webhook",
    operation_id = "payments-webhook",
    tag = "payments",
    request_body = ProviderEvent,
    params(
        ("Billwire-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">"),
        openapi_parts::IdempotencyKey,
    ),
    responses(
        (status = 200, description = "The delivery was received", body = WebhookReceipt),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 404, response = openapi_parts::NotFound),
        (status = 409, response = openapi_parts::Conflict),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
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
            &WebhookReceipt {
                received: true,
                handled: false,
                duplicate: None,
                payment: None,
            },
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
        &WebhookReceipt {
            received: true,
            handled: true,
            duplicate: Some(applied.duplicate),
            payment: Some(applied.payment),
        },
    )
    .await
}

/// What `POST /api/v1/payments/webhook` answers.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Always true.
    pub received: bool,
    /// Whether the event type is one Billwire acts on.
    pub handled: bool,
    /// When handled: the provider sent this event before, and nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
    /// When handled: the payment as it is now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
}
