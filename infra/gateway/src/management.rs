//! The management API (`/@connections/{id}`), answering as API Gateway does, so the
//! connector's `aws-sdk-apigatewaymanagement` client and `aws apigatewaymanagementapi`
//! work against it with only the endpoint changed. Requests are SigV4-signed by those
//! clients; local mode accepts any signature.

use crate::websocket::Outbound;
use crate::State;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

/// An error as the AWS SDKs parse it: the type in `x-amzn-ErrorType`, a JSON body.
fn aws_error(status: StatusCode, kind: &'static str, message: Option<&str>) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", None)
}

/// `POST /@connections/{id}`: the body becomes one text frame. Never waits on the client:
/// a client that does not read fills its queue and further posts get 429.
pub async fn post(
    axum::extract::State(gw): axum::extract::State<State>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if body.len() > gw.settings.max_message_bytes {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            Some("Message too long"),
        );
    }
    let Some(conn) = gw.connections.get(&id) else {
        return gone();
    };
    let text = String::from_utf8_lossy(&body).to_string();
    match conn.outbound.try_send(Outbound::Text(text)) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "LimitExceededException",
            Some("The client-side buffer is full"),
        ),
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => gone(),
    }
}

/// `GET /@connections/{id}`.
pub async fn describe(
    axum::extract::State(gw): axum::extract::State<State>,
    Path(id): Path<String>,
) -> Response {
    let Some(conn) = gw.connections.get(&id) else {
        return gone();
    };
    let last = DateTime::<Utc>::from_timestamp_millis(
        conn.last_active_ms
            .load(std::sync::atomic::Ordering::Relaxed),
    )
    .unwrap_or(conn.connected_at);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({
            "connectedAt": conn.connected_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "identity": { "sourceIp": conn.source_ip, "userAgent": conn.user_agent },
            "lastActiveAt": last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .to_string(),
    )
        .into_response()
}

/// `DELETE /@connections/{id}`: closes the connection (its `$disconnect` follows).
pub async fn delete(
    axum::extract::State(gw): axum::extract::State<State>,
    Path(id): Path<String>,
) -> Response {
    let Some(conn) = gw.connections.get(&id) else {
        return gone();
    };
    let _ = conn
        .outbound
        .send(Outbound::Close(
            1000,
            "Connection closed by the server".into(),
        ))
        .await;
    StatusCode::NO_CONTENT.into_response()
}
