//! `GET /api/v1/dashboard/stats`.

use super::openapi_parts;
use super::request::{authenticate, Query};
use super::response::{json, ApiResponse};
use super::App;
use crate::billing::stats::{self, Stats};
use crate::platform::error::Result;
use http::StatusCode;
use lambda_http::Request;

/// `GET /api/v1/dashboard/stats`: every figure from one snapshot, with `as_of_event`, the
/// newest event it includes (subscribe with `after` = it for what follows).
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/stats",
    operation_id = "dashboard-stats",
    tag = "dashboard",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dashboard's figures", body = Stats),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn dashboard(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    Query::new(&req, &[])?;
    let mut db = app.db().await?;
    let stats = stats::dashboard(&mut db, &who).await?;
    json(StatusCode::OK, &stats)
}
