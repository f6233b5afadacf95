//! `POST /api/v1/payments/intent`, `/payments/{id}/confirm`, `/payments/{id}/refund`,
//! `GET /api/v1/payments` and `/payments/{id}`.

use super::idempotency;
use super::request::{authenticate, cursor, json_body, optional_json_body, path_id, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::payments::{self, parse_method, Actor, NewIntent, PaymentStatus};
use crate::billing::values::BillingCycle;
use crate::platform::error::Result;
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentInput {
    plan_id: Uuid,
    billing_cycle: BillingCycle,
    payment_method: String,
    #[serde(default)]
    customer_id: Option<Uuid>,
}

/// `POST /api/v1/payments/intent` -> 201 with a payment that requires confirmation.
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfirmInput {
    #[serde(default)]
    payment_method: Option<String>,
}

/// `POST /api/v1/payments/{id}/confirm`.
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefundInput {}

/// `POST /api/v1/payments/{id}/refund` (admins).
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

/// `GET /api/v1/payments?limit=&starting_after=&status=`.
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
pub async fn get(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let id = path_id(&req, "payment")?;
    let db = app.db().await?;
    let payment = payments::get(&db, &who, id).await?;
    json(StatusCode::OK, &payment)
}
