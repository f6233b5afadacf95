//! The HTTP API: a request in, an API Gateway HTTP API (payload 2.0) event to the routed
//! function, its proxy response out.

use crate::State;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use base64::Engine;
use devkit::gateway_events::HttpEvent;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

fn gateway_error(status: StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(json!({ "message": message }).to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

pub async fn handle(
    axum::extract::State(gw): axum::extract::State<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let Some((route, params)) = gw.template.route(parts.method.as_str(), &path) else {
        return gateway_error(StatusCode::NOT_FOUND, "Not Found");
    };
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return gateway_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let mut event = HttpEvent::new(parts.method.as_str(), &route.path)
        .raw_query(parts.uri.query().unwrap_or(""))
        .source_ip(&peer.ip().to_string());
    for (name, value) in params {
        event = event.param(&name, value);
    }
    // Payload 2.0 joins repeated headers with commas and moves cookies to `cookies`.
    let mut seen: Vec<(String, String)> = Vec::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        if name == "cookie" {
            for c in value.split(';').map(str::trim).filter(|c| !c.is_empty()) {
                event = event.cookie(c);
            }
            continue;
        }
        match seen.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => seen.push((name.as_str().to_string(), value)),
        }
    }
    for (name, value) in seen {
        event = event.header(&name, value);
    }
    if !body.is_empty() {
        event = match std::str::from_utf8(&body) {
            Ok(text) => event.raw_body(text),
            Err(_) => event.binary_body(&body),
        };
    }
    match gw.invoker.invoke(&route.function, &event.to_json()).await {
        Ok(reply) => proxy_response(&reply),
        Err(e) => {
            tracing::error!(function = route.function, error = %e, "invocation failed");
            gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// Turns a function's payload 2.0 response into an HTTP response.
fn proxy_response(reply: &Value) -> Response<Body> {
    let status = reply
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        return gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let body = match reply.get("body").and_then(Value::as_str) {
        Some(b) if reply.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default()
        }
        Some(b) => b.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let mut add = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(n, v);
        }
    };
    if let Some(map) = reply.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            if let Some(v) = value.as_str() {
                add(name, v);
            }
        }
    }
    if let Some(map) = reply.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            for v in values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                add(name, v);
            }
        }
    }
    for cookie in reply
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = cookie.as_str() {
            add("set-cookie", c);
        }
    }
    response
}
