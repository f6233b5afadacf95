//! The WebSocket API: `$connect` decides the handshake, each client message is routed by
//! the template's selection expression, and a closed connection is reported to
//! `$disconnect`, each as a real API Gateway WebSocket event.

use crate::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use devkit::gateway_events::WsEvent;
use futures::{SinkExt, StreamExt};
use rand::RngCore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What the management API (or a route response) asks a connection's writer to do.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Close(u16, String),
}

#[derive(Debug)]
pub struct Connection {
    pub outbound: mpsc::Sender<Outbound>,
    pub connected_at: DateTime<Utc>,
    pub last_active_ms: Arc<AtomicI64>,
    pub source_ip: String,
    pub user_agent: String,
}

/// Open connections by id.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<Connection>> {
        self.inner.lock().ok()?.get(id).cloned()
    }

    fn insert(&self, id: &str, c: Arc<Connection>) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(id.to_string(), c);
        }
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.inner.lock() {
            m.remove(id);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An id shaped like API Gateway's (`L0SM9cOFvHcCIhw=`).
fn new_connection_id() -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

fn status_of(reply: &Value) -> u16 {
    reply
        .get("statusCode")
        .and_then(Value::as_u64)
        .unwrap_or(500) as u16
}

fn body_of(reply: &Value) -> Option<String> {
    reply
        .get("body")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .map(str::to_string)
}

/// `GET /ws`: runs `$connect`; a 2xx from it completes the handshake, anything else refuses
/// it with that status.
pub async fn upgrade(
    axum::extract::State(gw): axum::extract::State<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !gw.connect_rate.admit() {
        tracing::info!("new connection over the connect rate; refused with 429");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("content-type", "application/json")],
            json!({ "message": "Too Many Requests" }).to_string(),
        )
            .into_response();
    }
    let id = new_connection_id();
    let connected_at = Utc::now();
    let Some(route) = gw.template.ws_route("$connect") else {
        // Without a $connect route API Gateway accepts every connection.
        return accept(gw, ws, id, connected_at, peer, &headers);
    };
    let mut event = WsEvent::connect(&id).connected_at(connected_at.timestamp_millis());
    for (k, v) in &query {
        event = event.query(k, v);
    }
    for (k, v) in &headers {
        event = event.header(k.as_str(), String::from_utf8_lossy(v.as_bytes()));
    }
    match gw.invoker.invoke(&route.function, &event.to_json()).await {
        Ok(reply) if (200..300).contains(&status_of(&reply)) => {
            accept(gw, ws, id, connected_at, peer, &headers)
        }
        Ok(reply) => {
            let status = StatusCode::from_u16(status_of(&reply)).unwrap_or(StatusCode::FORBIDDEN);
            tracing::info!(
                connection_id = id,
                status = status.as_u16(),
                "$connect refused the connection"
            );
            (
                status,
                [("content-type", "application/json")],
                body_of(&reply).unwrap_or_else(|| json!({ "message": "Forbidden" }).to_string()),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(connection_id = id, error = %e, "$connect failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "message": "Internal server error" }).to_string(),
            )
                .into_response()
        }
    }
}

fn accept(
    gw: State,
    ws: WebSocketUpgrade,
    id: String,
    connected_at: DateTime<Utc>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Response {
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // Larger frames than API Gateway allows are read, then refused with 1009 below.
    ws.max_message_size(gw.settings.max_message_bytes * 8)
        .on_upgrade(move |socket| session(gw, socket, id, connected_at, peer, user_agent))
}

async fn session(
    gw: State,
    socket: WebSocket,
    id: String,
    connected_at: DateTime<Utc>,
    peer: SocketAddr,
    user_agent: String,
) {
    let (tx, mut rx) = mpsc::channel::<Outbound>(gw.settings.outbound_queue);
    let last_active = Arc::new(AtomicI64::new(Utc::now().timestamp_millis()));
    gw.connections.insert(
        &id,
        Arc::new(Connection {
            outbound: tx.clone(),
            connected_at,
            last_active_ms: last_active.clone(),
            source_ip: peer.ip().to_string(),
            user_agent,
        }),
    );
    tracing::info!(connection_id = id, "connected");
    let (mut sink, mut stream) = socket.split();

    // The writer: the only task that writes to the socket, in queue order.
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outbound::Text(t) => sink.send(Message::Text(Utf8Bytes::from(t))).await,
                Outbound::Close(code, reason) => {
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: Utf8Bytes::from(reason),
                        })))
                        .await;
                    break;
                }
            };
            if result.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let idle = gw.settings.idle_timeout;
    let expires = tokio::time::sleep(gw.settings.max_connection_age);
    tokio::pin!(expires);
    let (mut close_code, mut close_reason) = (1006i64, "Connection closed abnormally".to_string());
    loop {
        let next = tokio::select! {
            _ = &mut expires => {
                let _ = tx.send(Outbound::Close(1001, "Going away".into())).await;
                (close_code, close_reason) = (1001, "Going away".into());
                break;
            }
            _ = tokio::time::sleep(idle) => {
                let _ = tx.send(Outbound::Close(1001, "Going away".into())).await;
                (close_code, close_reason) = (1001, "Going away".into());
                break;
            }
            next = stream.next() => next,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                tracing::info!(connection_id = id, error = %e, "read failed");
                break;
            }
            None => break,
        };
        last_active.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        let body = match message {
            Message::Text(t) => t.to_string(),
            Message::Binary(b) => String::from_utf8_lossy(&b).to_string(),
            Message::Close(frame) => {
                (close_code, close_reason) = frame
                    .map(|f| (f.code as i64, f.reason.to_string()))
                    .unwrap_or((1005, "Client-side close frame status not set".into()));
                break;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if body.len() > gw.settings.max_message_bytes {
            let _ = tx
                .send(Outbound::Close(1009, "Message too big".into()))
                .await;
            (close_code, close_reason) = (1009, "Message too big".into());
            break;
        }
        route_message(&gw, &id, connected_at, &body, &tx).await;
    }
    gw.connections.remove(&id);
    drop(tx);
    let _ = writer.await;
    tracing::info!(connection_id = id, close_code, "disconnected");
    if let Some(route) = gw.template.ws_route("$disconnect") {
        let event = WsEvent::disconnect(&id, close_code, &close_reason)
            .connected_at(connected_at.timestamp_millis());
        if let Err(e) = gw.invoker.invoke(&route.function, &event.to_json()).await {
            tracing::error!(connection_id = id, error = %e, "$disconnect failed");
        }
    }
}

/// Sends one client message to its route; a two-way route's reply goes back to the client.
async fn route_message(
    gw: &State,
    id: &str,
    connected_at: DateTime<Utc>,
    body: &str,
    tx: &mpsc::Sender<Outbound>,
) {
    let Some(route) = gw.template.ws_route_for_message(body) else {
        let _ = tx
            .send(Outbound::Text(
                json!({ "message": "Forbidden", "connectionId": id }).to_string(),
            ))
            .await;
        return;
    };
    let event =
        WsEvent::message(id, &route.route_key, body).connected_at(connected_at.timestamp_millis());
    match gw.invoker.invoke(&route.function, &event.to_json()).await {
        Ok(reply) => {
            if route.two_way {
                if let Some(text) = body_of(&reply) {
                    let _ = tx.send(Outbound::Text(text)).await;
                }
            }
        }
        Err(e) => {
            tracing::error!(connection_id = id, route = route.route_key, error = %e, "route failed");
            let _ = tx
                .send(Outbound::Text(
                    json!({ "message": "Internal server error", "connectionId": id }).to_string(),
                ))
                .await;
        }
    }
}
