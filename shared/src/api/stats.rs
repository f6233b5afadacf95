//! `GET /api/v1/dashboard/stats`.

use super::request::{authenticate, Query};
use super::response::{json, ApiResponse};
use super::App;
use crate::billing::stats::{self};
use crate::platform::error::Result;
use http::StatusCode;
use lambda_http::Request;

/// `GET /api/v1/dashboard/stats`.
pub async fn dashboard(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    Query::new(&req, &[])?;
    let mut db = app.db().await?;
    let stats = stats::dashboard(&mut db, &who).await?;
    json(StatusCode::OK, &stats)
}
