//! `POST /api/v1/payments/intent`, `/payments/{id}/confirm`, `/payments/{id}/refund`,
//! `GET /api/v1/payments` and `/payments/{id}`.

use super::idempotency;
use super::openapi_parts;
use super::request::{authenticate, cursor, json_body, optional_json_body, path_id, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::pagination::Page;
use crate::billing::payments::{self, parse_method, Actor, NewIntent, Payment, PaymentStatus};
use crate::billing::values::BillingCycle;
use crate::platform::error::Result;
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IntentInput {
    plan_id: Uuid,
    billing_cycle: BillingCycle,
    /// A test method: `card`, `pm_card_visa`, `pm_card_chargeDeclined`, ...
    payment_method: String,
    /// Admins: the customer the payment is for (required). Customers: themselves, if given.
    #[serde(default)]
    customer_id: Option<Uuid>,
}

/// `POST /api/v1/payments/intent` -> 201 with a payment that requires confirmation.
///
/// Records `order_created`.
#[utoipa::path(
    post,
    path = "/api/v1/payments/intent",
    operation_id = "payments-intent",
    tag = "payments",
    request_body = IntentInput,
    params(openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A payment that requires confirmation", body = Payment),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 403, response = openapi_parts::Forbidden),
        (status = 404, response = openapi_parts::NotFound),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn create_intent(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let input: IntentInput = json_body(&req)?;
    let new = NewIntent {
        plan_id: input.plan_id,
        billing_cycle: input.billing_cycle,
        payment_method: parse_method(&input.payment_method)?,
        customer_id: input.customer_id,
    };
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let payment = payments::create_intent(&mut tx, &who, new).await?;
    commit(tx, StatusCode::CREATED, &payment).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfirmInput {
    #[serde(default)]
    payment_method: Option<String>,
}

/// `POST /api/v1/payments/{id}/confirm` (the payment's customer, or an admin).
///
/// A declined card is not an error: the answer is 200 with a `failed` payment. Records
/// `payment_received` or `order_updated`. The body is optional.
#[utoipa::path(
    post,
    path = "/api/v1/payments/{id}/confirm",
    operation_id = "payments-confirm",
    tag = "payments",
    request_body = Option<ConfirmInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment, succeeded or failed", body = Payment),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 403, response = openapi_parts::Forbidden),
        (status = 404, response = openapi_parts::NotFound),
        (status = 409, response = openapi_parts::Conflict),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn confirm(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let id = path_id(&req, "payment")?;
    let input: ConfirmInput = optional_json_body(&req)?;
    let method = input
        .payment_method
        .as_deref()
        .map(parse_method)
        .transpose()?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let payment = payments::confirm(&mut tx, Actor::User(&who), id, method).await?;
    commit(tx, StatusCode::OK, &payment).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmptyInput)]
struct RefundInput {}

/// `POST /api/v1/payments/{id}/refund` (admins): succeeded -> refunded.
///
/// Records `order_updated`. The body, if any, is `{}`.
#[utoipa::path(
    post,
    path = "/api/v1/payments/{id}/refund",
    operation_id = "payments-refund",
    tag = "payments",
    request_body = Option<RefundInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The refunded payment", body = Payment),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 403, response = openapi_parts::Forbidden),
        (status = 404, response = openapi_parts::NotFound),
        (status = 409, response = openapi_parts::Conflict),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn refund(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let id = path_id(&req, "payment")?;
    let _: RefundInput = optional_json_body(&req)?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let payment = payments::refund(&mut tx, &who, id).await?;
    commit(tx, StatusCode::OK, &payment).await
}

/// `GET /api/v1/payments?limit=&starting_after=&status=`: newest first; customers see
/// their own.
#[utoipa::path(
    get,
    path = "/api/v1/payments",
    operation_id = "payments-list",
    tag = "payments",
    params(openapi_parts::PaymentsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of payments", body = Page<Payment>),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn list(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let query = Query::new(&req, &["limit", "starting_after", "status"])?;
    let cursor = cursor(&query)?;
    let status = query.one_of("status", &PaymentStatus::ALL)?;
    let db = app.db().await?;
    let page = payments::list(&db, &who, &cursor, status.as_deref()).await?;
    json(StatusCode::OK, &page)
}

/// `GET /api/v1/payments/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/payments/{id}",
    operation_id = "payments-get",
    tag = "payments",
    params(openapi_parts::PathId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 404, response = openapi_parts::NotFound),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn get(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let id = path_id(&req, "payment")?;
    let db = app.db().await?;
    let payment = payments::get(&db, &who, id).await?;
    json(StatusCode::OK, &payment)
}
