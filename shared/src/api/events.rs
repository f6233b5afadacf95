//! `GET /api/v1/events` (the durable event log) and `POST /api/v1/events/ticket` (a ticket
//! to open a WebSocket).

use super::openapi_parts;
use super::request::{authenticate, optional_json_body, Query};
use super::response::{commit, json, ApiResponse};
use super::App;
use crate::platform::error::Result;
use crate::realtime::tickets::{issue_ticket, Ticket, TICKET_TTL_SECONDS};
use crate::store::outbox::{self, Audience, Event};
use crate::store::Tx;
use chrono::{DateTime, Utc};
use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use utoipa::ToSchema;

/// `GET /api/v1/events?after=<id>&limit=<n>`: the durable event log, scoped to what the
/// caller may see, oldest first. Poll with `after` = the last id you saw.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "events-list",
    tag = "events",
    params(openapi_parts::EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the event log", body = EventPage),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
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
        &EventPage {
            data: events,
            has_more,
            next_after,
        },
    )
}

/// What `GET /api/v1/events` answers.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<EventSchema>)]
    pub data: Vec<Event>,
    pub has_more: bool,
    /// Pass as `after` for the next page: the last id here, or `after` if there is none.
    pub next_after: i64,
}

/// The schema of a recorded event (`store::outbox::Event`) as the log and the WebSocket
/// show it. The store wing stays free of schema derives, so it is described here.
#[derive(ToSchema)]
#[schema(as = Event)]
#[allow(dead_code)]
pub struct EventSchema {
    /// Its place in the log: ids only grow, without gaps a reader could skip.
    id: i64,
    /// `order_created`, `payment_received`, `invoice_created` or `order_updated`.
    event: String,
    /// What happened, by kind: ids, amounts and statuses of the payment or invoice.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    created_at: DateTime<Utc>,
}

#[derive(serde::Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmptyInput)]
struct NoInput {}

/// `POST /api/v1/events/ticket`: a single-use ticket to open a WebSocket, valid 60 s.
///
/// Connect with `?ticket=<ticket>`. The body, if any, is `{}`. Not idempotency-keyed on
/// purpose: the response is a credential, and storing it for a replay would keep a usable
/// ticket in plain text for a day; a retry simply gets a new ticket.
#[utoipa::path(
    post,
    path = "/api/v1/events/ticket",
    operation_id = "events-ticket",
    tag = "events",
    request_body = Option<NoInput>,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "A ticket", body = Ticket),
        (status = 400, response = openapi_parts::BadRequest),
        (status = 401, response = openapi_parts::Unauthorized),
        (status = 413, response = openapi_parts::PayloadTooLarge),
        (status = 415, response = openapi_parts::UnsupportedMediaType),
        (status = 422, response = openapi_parts::UnprocessableEntity),
        (status = 500, response = openapi_parts::InternalError),
        (status = 503, response = openapi_parts::Unavailable),
    )
)]
pub async fn ticket(app: App, req: Request) -> Result<ApiResponse> {
    let who = authenticate(&app, &req)?;
    let _: NoInput = optional_json_body(&req)?;
    let mut db = app.db().await?;
    let tx = Tx::begin(&mut db).await?;
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
