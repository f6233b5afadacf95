//! `GET /api/v1/plans`, `POST /api/v1/plans`, `PATCH /api/v1/plans/{id}`.

use super::idempotency;
use super::openapi_parts;
use super::request::{authenticate, json_body, path_id, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::billing::plans::{self, NewPlan, Plan, PlanChanges};
use crate::billing::values::{text, Amount, Currency};
use crate::platform::error::{Error, Result};
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// `GET /api/v1/plans`: admins see every plan, customers the active ones.
#[utoipa::path(
    get,
    path = "/api/v1/plans",
    operation_id = "plans-list",
    tag = "plans",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plans", body = PlanList),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn list(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    Query::new(&req, &[])?;
    let db = app.db().await?;
    let plans = plans::list(&db, &who).await?;
    json(StatusCode::OK, &PlanList { data: plans })
}

/// What `GET /api/v1/plans` answers: every plan at once (there is no paging).
#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub data: Vec<Plan>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePlanInput)]
struct CreateInput {
    name: String,
    #[serde(default)]
    description: Option<String>,
    monthly_price: i64,
    yearly_price: i64,
    currency: String,
}

/// `POST /api/v1/plans` (admins). Prices are minor units in `currency`.
#[utoipa::path(
    post,
    path = "/api/v1/plans",
    operation_id = "plans-create",
    tag = "plans",
    request_body = CreateInput,
    params(openapi_parts::IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new plan", body = Plan),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 403, response = openapi_parts::Forbidden),
        (status = 409, response = openapi_parts::Conflict),
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
    let input: CreateInput = json_body(&req)?;
    let new = NewPlan {
        id: Uuid::now_v7(),
        name: text("name", &input.name, 1, 100)?,
        description: text(
            "description",
            input.description.as_deref().unwrap_or(""),
            0,
            1000,
        )?,
        monthly_price: Amount::parse("monthly_price", input.monthly_price)?,
        yearly_price: Amount::parse("yearly_price", input.yearly_price)?,
        currency: Currency::parse("currency", &input.currency)?,
    };
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let plan = plans::create(&mut tx, who.account_id, new).await?;
    commit(tx, StatusCode::CREATED, &plan).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdatePlanInput)]
struct UpdateInput {
    name: Option<String>,
    description: Option<String>,
    monthly_price: Option<i64>,
    yearly_price: Option<i64>,
    active: Option<bool>,
}

/// `PATCH /api/v1/plans/{id}` (admins). The currency is fixed once a plan exists.
///
/// Pass at least one field; the others keep their values.
#[utoipa::path(
    patch,
    path = "/api/v1/plans/{id}",
    operation_id = "plans-update",
    tag = "plans",
    request_body = UpdateInput,
    params(openapi_parts::PathId),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The plan as changed", body = Plan),
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
pub async fn update(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let id = path_id(&req, "plan")?;
    let input: UpdateInput = json_body(&req)?;
    let changes = PlanChanges {
        name: input
            .name
            .as_deref()
            .map(|n| text("name", n, 1, 100))
            .transpose()?,
        description: input
            .description
            .as_deref()
            .map(|d| text("description", d, 0, 1000))
            .transpose()?,
        monthly_price: input
            .monthly_price
            .map(|p| Amount::parse("monthly_price", p))
            .transpose()?,
        yearly_price: input
            .yearly_price
            .map(|p| Amount::parse("yearly_price", p))
            .transpose()?,
        active: input.active,
    };
    if input_is_empty(&changes) {
        return Err(Error::validation(
            "nothing to change: pass name, description, monthly_price, yearly_price or active",
        ));
    }
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    let plan = plans::update(&mut tx, who.account_id, id, changes).await?;
    commit(tx, StatusCode::OK, &plan).await
}

fn input_is_empty(c: &PlanChanges) -> bool {
    c.name.is_none()
        && c.description.is_none()
        && c.monthly_price.is_none()
        && c.yearly_price.is_none()
        && c.active.is_none()
}
