//! `GET /api/v1/customers` (admins).

use super::request::{authenticate, cursor, Query};
use super::response::{json, ApiResponse};
use super::App;
use crate::billing::customers::{self};
use crate::platform::error::Result;
use http::StatusCode;
use lambda_http::Request;

/// `GET /api/v1/customers?limit=&starting_after=` (admins).
pub async fn list(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    who.require_admin()?;
    let query = Query::new(&req, &["limit", "starting_after"])?;
    let cursor = cursor(&query)?;
    let db = app.db().await?;
    let page = customers::list(&db, &who, &cursor).await?;
    json(StatusCode::OK, &page)
}
