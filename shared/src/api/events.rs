//! `GET /api/v1/events` (the durable event log) and `POST /api/v1/events/ticket` (a ticket
//! to open a WebSocket).

use super::idempotency;
use super::request::{authenticate, optional_json_body, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::platform::error::Result;
use crate::realtime::tickets::{issue_ticket, Ticket, TICKET_TTL_SECONDS};
use crate::store::outbox::{self, Audience};
use crate::store::Tx;
use http::StatusCode;
use lambda_http::Request;

/// `GET /api/v1/events?after=<id>&limit=<n>`: the durable event log, scoped to what the
/// caller may see, oldest first. Poll with `after` = the last id you saw.
pub async fn list(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let query = Query::new(&req, &["after", "limit"])?;
    let after = query.int("after", 0, 0..=i64::MAX)?;
    let limit = query.int("limit", 100, 1..=1000)?;
    let db = app.db().await?;
    let mut events = outbox::read_after(&db, after, limit + 1, Audience::from(&who)).await?;
    let has_more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next_after = events.last().map_or(after, |e| e.id);
    json(
        StatusCode::OK,
        &serde_json::json!({ "data": events, "has_more": has_more, "next_after": next_after }),
    )
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoInput {}

/// `POST /api/v1/events/ticket`: a single-use ticket to open a WebSocket, valid 60 s.
pub async fn ticket(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let _: NoInput = optional_json_body(&req)?;
    let mut db = app.db().await?;
    let mut tx = Tx::begin(&mut db).await?;
    if let Some(replay) = idempotency::begin(&mut tx, &req, Some(&who)).await? {
        return Ok(replay);
    }
    let ticket = issue_ticket(&*tx, &who).await?;
    let url = app.config.websocket_url.as_ref().map(|base| {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}ticket={ticket}")
    });
    commit(
        tx,
        StatusCode::CREATED,
        &Ticket {
            ticket,
            expires_in: TICKET_TTL_SECONDS,
            url,
        },
    )
    .await
}
