//! The WebSocket API's route handlers: `$connect` (spends a ticket, registers the
//! connection), `$default` (subscribe and ping, parsed by `realtime::protocol`) and
//! `$disconnect`. For `$connect` the response status decides the handshake; for messages
//! the body (if any) is sent back to the client.

use super::log;
use super::response::status;
use super::App;
use crate::billing::accounts;
use crate::platform::error::Error;
use crate::realtime::protocol::{ClientMessage, ServerMessage};
use crate::realtime::{registry, tickets};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest,
};
use lambda_http::aws_lambda_events::encodings::Body;

/// An API Gateway WebSocket event, as `$connect`, `$disconnect` and `$default` receive it.
pub type WebSocketRequest = ApiGatewayWebsocketProxyRequest;

fn ws_response(status: u16, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = i64::from(status);
    r.body = body.map(Body::Text);
    r
}

/// Refuses a handshake with the error's status and JSON body.
fn refuse(e: &Error) -> ApiGatewayProxyResponse {
    ws_response(status(e.kind()).as_u16(), Some(e.body().to_string()))
}

/// A message for the client; the route itself succeeded.
fn reply(message: ServerMessage) -> ApiGatewayProxyResponse {
    ws_response(200, Some(message.to_json()))
}

fn connection_id(event: &WebSocketRequest) -> Option<&str> {
    event
        .request_context
        .connection_id
        .as_deref()
        .filter(|id| !id.is_empty() && id.len() <= 128)
}

fn request_id(event: &WebSocketRequest) -> &str {
    event.request_context.request_id.as_deref().unwrap_or("")
}

/// `$connect`: `?ticket=<ticket>` (and optionally `&account=<slug>`, which must be the
/// ticket's account). 200 accepts the connection as pending; 401/403 refuse it.
pub async fn connect(app: App, event: WebSocketRequest) -> ApiGatewayProxyResponse {
    let result = async {
        let id = connection_id(&event)
            .ok_or_else(|| Error::bad_request("invalid_request", "no connection id"))?;
        let query = &event.query_string_parameters;
        let ticket = query
            .first("ticket")
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                Error::unauthorized("connect with ?ticket= from POST /api/v1/events/ticket")
            })?;
        let db = app.db().await?;
        let who = tickets::redeem_ticket(&db, ticket).await?.ok_or_else(|| {
            Error::unauthorized("the ticket is invalid, expired or already used")
        })?;
        if let Some(slug) = query.first("account") {
            let account = accounts::find_by_slug(&db, slug).await?;
            if account != Some(who.account_id) {
                return Err(Error::forbidden("the ticket belongs to another account"));
            }
        }
        registry::register(&db, id, &who).await?;
        tracing::info!(connection_id = id, account_id = %who.account_id, user_id = %who.user_id, "connected");
        Ok(())
    }
    .await;
    match result {
        Ok(()) => ws_response(200, None),
        Err(e) => {
            log::error(&e, request_id(&event));
            refuse(&e)
        }
    }
}

/// `$disconnect`: forgets the connection.
pub async fn disconnect(app: App, event: WebSocketRequest) -> ApiGatewayProxyResponse {
    let Some(id) = connection_id(&event) else {
        return ws_response(200, None);
    };
    let result = async {
        let db = app.db().await?;
        registry::remove(&db, id).await
    }
    .await;
    match result {
        Ok(_) => ws_response(200, None),
        Err(e) => {
            log::error(&e, request_id(&event));
            refuse(&e)
        }
    }
}

/// `$default`: every client message. Unknown or malformed ones get an error message back;
/// nothing a client sends can make it fail.
pub async fn message(app: App, event: WebSocketRequest) -> ApiGatewayProxyResponse {
    let Some(id) = connection_id(&event) else {
        return reply(ServerMessage::Error {
            code: "invalid_request".into(),
            message: "no connection id".into(),
        });
    };
    let message = match ClientMessage::parse(event.body.as_deref().unwrap_or("")) {
        Ok(message) => message,
        Err(refusal) => return reply(refusal.to_message()),
    };
    let result = async {
        let db = app.db().await?;
        match message {
            ClientMessage::Subscribe { after } => {
                if registry::request_subscribe(&db, id, after).await? {
                    // The connector answers {"type":"subscribed"} once the cursor is set.
                    Ok(None)
                } else {
                    Ok(Some(ServerMessage::Error {
                        code: "not_connected".into(),
                        message: "this connection is not registered; reconnect".into(),
                    }))
                }
            }
            ClientMessage::Ping => {
                registry::touch(&db, id).await?;
                Ok(Some(ServerMessage::Pong))
            }
        }
    }
    .await;
    match result {
        Ok(Some(message)) => reply(message),
        Ok(None) => ws_response(200, None),
        Err(e) => {
            log::error(&e, request_id(&event));
            reply(ServerMessage::Error {
                code: e.code().into(),
                message: e.message().into(),
            })
        }
    }
}
