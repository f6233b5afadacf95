//! `POST /api/v1/invoices`, its state changes (`/invoices/{id}/finalize|pay|void|
//! mark-uncollectible`), `GET /api/v1/invoices` and `/invoices/{id}`.

use super::idempotency;
use super::openapi_parts;
use super::request::{authenticate, cursor, json_body, optional_json_body, path_id, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::invoices::{
    self, totals, Invoice, InvoiceStatus, NewInvoice, NewLine, Transition, MAX_LINES, MAX_QUANTITY,
};
use crate::billing::pagination::Page;
use crate::billing::values::{text, Amount, Currency};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use chrono::NaiveDate;
use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InvoiceLineInput)]
struct LineInput {
    description: String,
    quantity: i64,
    unit_amount: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateInvoiceInput)]
struct CreateInput {
    customer_id: Uuid,
    lines: Vec<LineInput>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    memo: Option<String>,
    /// A date like `2026-12-31`.
    #[serde(default)]
    #[schema(format = Date)]
    due_date: Option<String>,
}

fn parse(input: CreateInput) -> Result<NewInvoice> {
    if input.lines.is_empty() || input.lines.len() > MAX_LINES {
        return Err(Error::validation(format!(
            "an invoice needs 1 to {MAX_LINES} lines"
        )));
    }
    let lines = input
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if !(1..=MAX_QUANTITY).contains(&l.quantity) {
                return Err(Error::validation(format!(
                    "lines[{i}].quantity must be from 1 to {MAX_QUANTITY}"
                )));
            }
            Ok(NewLine {
                description: text(&format!("lines[{i}].description"), &l.description, 1, 500)?,
                quantity: l.quantity,
                unit_amount: Amount::parse(&format!("lines[{i}].unit_amount"), l.unit_amount)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    totals(&lines)?;
    Ok(NewInvoice {
        customer_id: input.customer_id,
        currency: input
            .currency
            .as_deref()
            .map(|c| Currency::parse("currency", c))
            .transpose()?,
        lines,
        memo: input
            .memo
            .as_deref()
            .map(|m| text("memo", m, 0, 2000))
            .transpose()?,
        due_date: input
            .due_date
            .as_deref()
            .map(|d| {
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| Error::validation("due_date must be a date like 2026-12-31"))
            })
            .transpose()?,
    })
}

/// `POST /api/v1/invoices` (admins) -> 201 with a draft invoice.
///
/// Records `invoice_created`.
#[utoipa::path(
    post,
    path = "/api/v1/invoices",
    operation_id = "invoices-create",
    tag = "invoices",
    request_body = CreateInput,
    params(openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A draft invoice", body = Invoice),
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
pub async fn create(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let new = parse(json_body(&req)?)?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let invoice = invoices::create(&mut tx, &who, new).await?;
    commit(tx, StatusCode::CREATED, &invoice).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmptyInput)]
struct NoInput {}

async fn transition(app: App, req: Request, t: Transition) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let id = path_id(&req, "invoice")?;
    let _: NoInput = optional_json_body(&req)?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let invoice = invoices::transition(&mut tx, &who, id, t).await?;
    commit(tx, StatusCode::OK, &invoice).await
}

/// `POST /api/v1/invoices/{id}/finalize` (admins): draft -> open.
///
/// Any other move is 409. Records `order_updated`. The body, if any, is `{}`.
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/finalize",
    operation_id = "invoices-finalize",
    tag = "invoices",
    request_body = Option<NoInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invoice in its new status", body = Invoice),
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
pub async fn finalize(app: App, req: Request) -> Result<ApiResponse> {
    transition(app, req, Transition::Finalize).await
}

/// `POST /api/v1/invoices/{id}/pay` (admins): open or uncollectible -> paid.
///
/// Any other move is 409. Records `order_updated`. The body, if any, is `{}`.
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/pay",
    operation_id = "invoices-pay",
    tag = "invoices",
    request_body = Option<NoInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invoice in its new status", body = Invoice),
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
pub async fn pay(app: App, req: Request) -> Result<ApiResponse> {
    transition(app, req, Transition::Pay).await
}

/// `POST /api/v1/invoices/{id}/void` (admins): open or uncollectible -> void.
///
/// Any other move is 409. Records `order_updated`. The body, if any, is `{}`.
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/void",
    operation_id = "invoices-void",
    tag = "invoices",
    request_body = Option<NoInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invoice in its new status", body = Invoice),
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
pub async fn void(app: App, req: Request) -> Result<ApiResponse> {
    transition(app, req, Transition::Void).await
}

/// `POST /api/v1/invoices/{id}/mark-uncollectible` (admins): open -> uncollectible.
///
/// Any other move is 409. Records `order_updated`. The body, if any, is `{}`.
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/mark-uncollectible",
    operation_id = "invoices-mark-uncollectible",
    tag = "invoices",
    request_body = Option<NoInput>,
    params(openapi_parts::PathId, openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invoice in its new status", body = Invoice),
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
pub async fn mark_uncollectible(app: App, req: Request) -> Result<ApiResponse> {
    transition(app, req, Transition::MarkUncollectible).await
}

/// `GET /api/v1/invoices?status=&limit=&starting_after=`: newest first; customers see
/// their own.
#[utoipa::path(
    get,
    path = "/api/v1/invoices",
    operation_id = "invoices-list",
    tag = "invoices",
    params(openapi_parts::InvoicesQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of invoices", body = Page<Invoice>),
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
    let status = query.one_of("status", &InvoiceStatus::ALL)?;
    let db = app.db().await?;
    let page = invoices::list(&db, &who, &cursor, status.as_deref()).await?;
    json(StatusCode::OK, &page)
}

/// `GET /api/v1/invoices/{id}`, with its lines.
#[utoipa::path(
    get,
    path = "/api/v1/invoices/{id}",
    operation_id = "invoices-get",
    tag = "invoices",
    params(openapi_parts::PathId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The invoice", body = Invoice),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 404, response = openapi_parts::NotFound),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn get(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let id = path_id(&req, "invoice")?;
    let db = app.db().await?;
    let invoice = invoices::get(&db, &who, id).await?;
    json(StatusCode::OK, &invoice)
}
