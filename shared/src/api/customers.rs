//! `GET /api/v1/customers` (admins).

use super::openapi_parts;
use super::request::{authenticate, cursor, Query};
use super::response::{json, ApiResponse};
use super::App;
use crate::billing::customers::{self, Customer};
use crate::billing::pagination::Page;
use crate::platform::error::Result;
use http::StatusCode;
use lambda_http::Request;

/// `GET /api/v1/customers?limit=&starting_after=` (admins): newest first, with their
/// order count and spend.
#[utoipa::path(
    get,
    path = "/api/v1/customers",
    operation_id = "customers-list",
    tag = "customers",
    params(openapi_parts::PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of customers", body = Page<Customer>),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 403, response = openapi_parts::Forbidden),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn list(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let query = Query::new(&req, &["limit", "starting_after"])?;
    let cursor = cursor(&query)?;
    let db = app.db().await?;
    let page = customers::list(&db, &who, &cursor).await?;
    json(StatusCode::OK, &page)
}
