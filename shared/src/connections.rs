//! WebSocket connections: tickets to connect, the `$connect`/`$disconnect`/`$default`
//! handlers, and the connection registry the connector delivers from.
//!
//! The protocol (DESIGN.md): `POST /api/v1/events/ticket` returns a single-use ticket valid
//! for 60 s; the client connects with `?ticket=...` (the JWT never goes into a URL). Its
//! first message is `{"action":"subscribe","after":<last id seen or null>}`; the connector
//! answers `{"type":"subscribed","after":N}` once the connection's cursor is set, and from
//! then on delivers every event after N the connection may see. `{"action":"ping"}` is
//! answered with `{"type":"pong"}`.

use crate::app::App;
use crate::auth::{self, Principal, Role};
use crate::error::{ApiError, ApiResult};
use deadpool_postgres::GenericClient;
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use lambda_http::aws_lambda_events::encodings::Body;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// NOTIFY channel for subscribe and disconnect; the payload is the connection id.
pub const CHANNEL: &str = "billwire_connections";
pub const TICKET_TTL_SECONDS: i64 = 60;
/// Client messages are tiny; anything larger is refused before parsing.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

#[derive(Debug, Serialize)]
pub struct Ticket {
    pub ticket: String,
    pub expires_in: i64,
    /// Where to connect, when the deployment knows (`WEBSOCKET_URL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Issues a single-use ticket for `who`; only its hash is stored.
pub async fn issue_ticket(db: &impl GenericClient, who: &Principal) -> ApiResult<String> {
    let ticket = auth::new_secret();
    db.execute(
        "INSERT INTO ws_tickets (ticket_hash, account_id, user_id, role, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
        &[
            &auth::secret_hash(&ticket),
            &who.account_id,
            &who.user_id,
            &who.role.as_str(),
            &(TICKET_TTL_SECONDS as f64),
        ],
    )
    .await?;
    // Old tickets are useless; keep the table small.
    db.execute(
        "DELETE FROM ws_tickets WHERE expires_at < now() - interval '1 hour'",
        &[],
    )
    .await?;
    Ok(ticket)
}

/// Spends a ticket: valid, unexpired and unused, or `None`. Atomic, so a ticket opens at
/// most one connection even when raced.
pub async fn redeem_ticket(db: &impl GenericClient, ticket: &str) -> ApiResult<Option<Principal>> {
    let row = db
        .query_opt(
            "UPDATE ws_tickets SET used_at = now()
              WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > now()
              RETURNING account_id, user_id, role",
            &[&auth::secret_hash(ticket)],
        )
        .await?;
    row.map(|r| {
        Ok(Principal {
            account_id: r.try_get("account_id")?,
            user_id: r.try_get("user_id")?,
            role: Role::from_db(r.try_get("role")?)?,
        })
    })
    .transpose()
}

/// A registered connection, as the connector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: String,
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub state: String,
    pub requested_after: Option<i64>,
    pub cursor: Option<i64>,
    pub generation: i32,
}

impl Connection {
    fn from_row(row: &tokio_postgres::Row) -> ApiResult<Connection> {
        Ok(Connection {
            id: row.try_get("connection_id")?,
            account_id: row.try_get("account_id")?,
            user_id: row.try_get("user_id")?,
            role: Role::from_db(row.try_get("role")?)?,
            state: row.try_get("state")?,
            requested_after: row.try_get("requested_after")?,
            cursor: row.try_get("cursor")?,
            generation: row.try_get("generation")?,
        })
    }

    /// The customer scope of invariant 7: `None` for admins.
    pub fn customer_scope(&self) -> Option<Uuid> {
        (self.role != Role::Admin).then_some(self.user_id)
    }
}

const CONNECTION_COLUMNS: &str =
    "connection_id, account_id, user_id, role, state, requested_after, cursor, generation";

pub async fn register(
    db: &impl GenericClient,
    connection_id: &str,
    who: &Principal,
) -> ApiResult<()> {
    db.execute(
        "INSERT INTO ws_connections (connection_id, account_id, user_id, role)
         VALUES ($1, $2, $3, $4) ON CONFLICT (connection_id) DO NOTHING",
        &[
            &connection_id,
            &who.account_id,
            &who.user_id,
            &who.role.as_str(),
        ],
    )
    .await?;
    Ok(())
}

/// Records a subscribe request and wakes the connector. `after` is clamped to the newest
/// event id, and `null` means "from the newest", so the cursor the connector will set is
/// fixed here, whichever connector replica picks it up. Returns false if the connection is
/// unknown.
pub async fn request_subscribe(
    db: &impl GenericClient,
    connection_id: &str,
    after: Option<i64>,
) -> ApiResult<bool> {
    let row = db
        .query_opt(
            "WITH head AS (SELECT coalesce(max(id), 0) AS id FROM events),
                  u AS (UPDATE ws_connections c
                           SET state = 'subscribing',
                               requested_after = least(coalesce($2, head.id), head.id),
                               generation = c.generation + 1,
                               last_seen_at = now()
                          FROM head
                         WHERE c.connection_id = $1
                     RETURNING c.connection_id)
             SELECT pg_notify($3, u.connection_id) FROM u",
            &[&connection_id, &after, &CHANNEL],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn touch(db: &impl GenericClient, connection_id: &str) -> ApiResult<bool> {
    Ok(db
        .execute(
            "UPDATE ws_connections SET last_seen_at = now() WHERE connection_id = $1",
            &[&connection_id],
        )
        .await?
        == 1)
}

/// Forgets a connection and tells the connector (`$disconnect`, or a 410 from the API).
pub async fn remove(db: &impl GenericClient, connection_id: &str) -> ApiResult<bool> {
    let row = db
        .query_opt(
            "WITH d AS (DELETE FROM ws_connections WHERE connection_id = $1 RETURNING connection_id)
             SELECT pg_notify($2, d.connection_id) FROM d",
            &[&connection_id, &CHANNEL],
        )
        .await?;
    Ok(row.is_some())
}

/// Connections nothing has been heard from for `silent_for`: candidates for a liveness probe.
pub async fn silent(
    db: &impl GenericClient,
    silent_for: std::time::Duration,
    limit: i64,
) -> ApiResult<Vec<String>> {
    db.query(
        "SELECT connection_id FROM ws_connections
          WHERE last_seen_at < now() - make_interval(secs => $1)
          ORDER BY last_seen_at LIMIT $2",
        &[&silent_for.as_secs_f64(), &limit],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}

/// Housekeeping: drops tickets, idempotency keys and refresh tokens nobody can use any more, a batch at a
/// time. Returns how many rows went.
pub async fn purge_expired(db: &impl GenericClient) -> ApiResult<u64> {
    // Spent refresh tokens stay until they expire, so a replay is still recognised.
    const EXPIRED: [(&str, &str); 3] = [
        ("ws_tickets", "expires_at < now() - interval '1 hour'"),
        (
            "idempotency_keys",
            "created_at < now() - interval '24 hours'",
        ),
        ("refresh_tokens", "expires_at < now() - interval '1 hour'"),
    ];
    let mut gone = 0;
    for (table, expired) in EXPIRED {
        gone += db
            .execute(
                &format!(
                    "DELETE FROM {table} WHERE ctid IN
                       (SELECT ctid FROM {table} WHERE {expired} LIMIT 10000)"
                ),
                &[],
            )
            .await?;
    }
    Ok(gone)
}

/// Connections that are subscribed or asking to be.
pub async fn load_active(db: &impl GenericClient) -> ApiResult<Vec<Connection>> {
    db.query(
        &format!("SELECT {CONNECTION_COLUMNS} FROM ws_connections WHERE state IN ('subscribing', 'live')"),
        &[],
    )
    .await?
    .iter()
    .map(Connection::from_row)
    .collect()
}

pub async fn load(db: &impl GenericClient, connection_id: &str) -> ApiResult<Option<Connection>> {
    db.query_opt(
        &format!("SELECT {CONNECTION_COLUMNS} FROM ws_connections WHERE connection_id = $1"),
        &[&connection_id],
    )
    .await?
    .as_ref()
    .map(Connection::from_row)
    .transpose()
}

/// Marks a subscribing connection live at `cursor`, if it is still the same subscription.
pub async fn activate(
    db: &impl GenericClient,
    connection_id: &str,
    generation: i32,
    cursor: i64,
) -> ApiResult<bool> {
    Ok(db
        .execute(
            "UPDATE ws_connections SET state = 'live', cursor = $3
              WHERE connection_id = $1 AND generation = $2 AND state = 'subscribing'",
            &[&connection_id, &generation, &cursor],
        )
        .await?
        == 1)
}

/// Persists delivery cursors in one statement; a cursor never moves backwards.
pub async fn save_cursors(db: &impl GenericClient, cursors: &[(String, i64)]) -> ApiResult<()> {
    if cursors.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = cursors.iter().map(|(id, _)| id.as_str()).collect();
    let values: Vec<i64> = cursors.iter().map(|(_, c)| *c).collect();
    db.execute(
        "UPDATE ws_connections c SET cursor = v.cursor
           FROM unnest($1::text[], $2::bigint[]) AS v(id, cursor)
          WHERE c.connection_id = v.id AND c.state = 'live' AND (c.cursor IS NULL OR c.cursor < v.cursor)",
        &[&ids, &values],
    )
    .await?;
    Ok(())
}

/// A WebSocket route's response: for `$connect` the status decides the handshake; for
/// messages the body (if any) is sent back to the client.
fn ws_response(status: i64, body: Option<Value>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.body = body.map(|b| Body::Text(b.to_string()));
    r
}

fn ws_error(status: i64, e: &ApiError) -> ApiGatewayProxyResponse {
    ws_response(status, Some(e.body()))
}

fn client_error(code: &str, message: &str) -> ApiGatewayProxyResponse {
    ws_response(
        200,
        Some(json!({ "type": "error", "code": code, "message": message })),
    )
}

pub mod ws {
    //! The WebSocket API's route handlers.

    use super::*;

    fn connection_id(event: &ApiGatewayWebsocketProxyRequest) -> Option<&str> {
        event
            .request_context
            .connection_id
            .as_deref()
            .filter(|id| !id.is_empty() && id.len() <= 128)
    }

    /// `$connect`: `?ticket=<ticket>` (and optionally `&account=<slug>`, which must be the
    /// ticket's account). 200 accepts the connection as pending; 401/403 refuse it.
    pub async fn connect(
        app: App,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let Some(id) = connection_id(&event) else {
            return ws_error(
                400,
                &ApiError::bad_request("invalid_request", "no connection id"),
            );
        };
        let query = &event.query_string_parameters;
        let Some(ticket) = query
            .first("ticket")
            .filter(|t| !t.is_empty() && t.len() <= 256)
        else {
            return ws_error(
                401,
                &ApiError::unauthorized("connect with ?ticket= from POST /api/v1/events/ticket"),
            );
        };
        let result: ApiResult<ApiGatewayProxyResponse> = async {
            let db = app.db().await?;
            let Some(who) = redeem_ticket(&db, ticket).await? else {
                return Ok(ws_error(
                    401,
                    &ApiError::unauthorized("the ticket is invalid, expired or already used"),
                ));
            };
            if let Some(slug) = query.first("account") {
                let account = crate::accounts::find_by_slug(&db, slug).await?;
                if account != Some(who.account_id) {
                    return Ok(ws_error(
                        403,
                        &ApiError::forbidden("the ticket belongs to another account"),
                    ));
                }
            }
            register(&db, id, &who).await?;
            tracing::info!(connection_id = id, account_id = %who.account_id, user_id = %who.user_id, "connected");
            Ok(ws_response(200, None))
        }
        .await;
        result.unwrap_or_else(|e| ws_error(e.status.as_u16() as i64, &e))
    }

    /// `$disconnect`: forgets the connection.
    pub async fn disconnect(
        app: App,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let Some(id) = connection_id(&event) else {
            return ws_response(200, None);
        };
        let result = async {
            let db = app.db().await?;
            remove(&db, id).await
        }
        .await;
        match result {
            Ok(_) => ws_response(200, None),
            Err(e) => ws_error(e.status.as_u16() as i64, &e),
        }
    }

    /// `$default`: every client message. Unknown or malformed ones get an error message
    /// back; nothing a client sends can make it fail.
    pub async fn message(
        app: App,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let Some(id) = connection_id(&event) else {
            return client_error("invalid_request", "no connection id");
        };
        let body = event.body.as_deref().unwrap_or("");
        if body.len() > MAX_CLIENT_MESSAGE_BYTES {
            return client_error(
                "message_too_large",
                &format!("messages must be at most {MAX_CLIENT_MESSAGE_BYTES} bytes"),
            );
        }
        let Ok(Value::Object(msg)) = serde_json::from_str::<Value>(body) else {
            return client_error(
                "invalid_json",
                "messages are JSON objects with an \"action\"",
            );
        };
        let action = msg.get("action").and_then(Value::as_str).unwrap_or("");
        let unknown_field = msg
            .keys()
            .find(|k| !matches!((action, k.as_str()), (_, "action") | ("subscribe", "after")));
        if let Some(field) = unknown_field {
            return client_error("invalid_message", &format!("unknown field {field:?}"));
        }
        let result = match action {
            "subscribe" => {
                let after = match msg.get("after") {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_i64().filter(|n| *n >= 0) {
                        Some(n) => Some(n),
                        None => return client_error(
                            "invalid_message",
                            "\"after\" must be the last event id you saw (an integer >= 0) or null",
                        ),
                    },
                };
                subscribe(&app, id, after).await
            }
            "ping" => ping(&app, id).await,
            "" => Ok(client_error(
                "unknown_action",
                "a message needs an \"action\": subscribe or ping",
            )),
            other => Ok(client_error(
                "unknown_action",
                &format!("unknown action {other:?}; use subscribe or ping"),
            )),
        };
        result.unwrap_or_else(|e| client_error(e.code, &e.message))
    }

    async fn subscribe(
        app: &App,
        id: &str,
        after: Option<i64>,
    ) -> ApiResult<ApiGatewayProxyResponse> {
        let db = app.db().await?;
        if request_subscribe(&db, id, after).await? {
            // The connector answers with {"type":"subscribed"} once the cursor is set.
            Ok(ws_response(200, None))
        } else {
            Ok(client_error(
                "not_connected",
                "this connection is not registered; reconnect",
            ))
        }
    }

    async fn ping(app: &App, id: &str) -> ApiResult<ApiGatewayProxyResponse> {
        let db = app.db().await?;
        touch(&db, id).await?;
        Ok(ws_response(200, Some(json!({ "type": "pong" }))))
    }
}

pub mod api {
    use super::*;
    use crate::auth::authenticate;
    use crate::db::Tx;
    use crate::http::{self, ApiResponse, StatusCode};
    use crate::idempotency;
    use lambda_http::Request;

    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct NoInput {}

    /// `POST /api/v1/events/ticket`: a single-use ticket to open a WebSocket, valid 60 s.
    pub async fn ticket(app: App, req: Request) -> ApiResult<ApiResponse> {
        let who = authenticate(&app, &req)?;
        let _: NoInput = http::optional_json_body(&req)?;
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
        tx.respond(
            StatusCode::CREATED,
            &Ticket {
                ticket,
                expires_in: TICKET_TTL_SECONDS,
                url,
            },
        )
        .await
    }
}
