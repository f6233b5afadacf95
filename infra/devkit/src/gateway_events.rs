//! API Gateway HTTP API (payload format 2.0) events, built the way AWS builds them (see
//! `aws_lambda_events`' fixture `example-apigw-v2-request-no-authorizer.json`). Tests, the
//! example events for `cargo lambda invoke` and the local gateway all use this one builder.

use lambda_http::Request;
use serde_json::{json, Value};

/// Builds an API Gateway HTTP API (payload format 2.0) event, as AWS sends it.
#[derive(Debug, Clone)]
pub struct HttpEvent {
    method: String,
    route: String,
    path_params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// Request id and time, fixed for reproducible example files; random and now otherwise.
    context: Option<(String, i64)>,
    /// The query string exactly as received (the gateway); else built from `query`.
    raw_query: Option<String>,
    base64_body: bool,
    source_ip: Option<String>,
    cookies: Vec<String>,
}

impl HttpEvent {
    /// `route` is the template path, e.g. `/api/v1/payments/{id}/confirm`.
    pub fn new(method: &str, route: &str) -> HttpEvent {
        HttpEvent {
            method: method.to_uppercase(),
            route: route.to_string(),
            path_params: Vec::new(),
            query: Vec::new(),
            headers: vec![
                ("accept".into(), "application/json".into()),
                ("host".into(), "api.billwire.test".into()),
                ("user-agent".into(), "billwire-tests".into()),
                ("x-forwarded-proto".into(), "https".into()),
            ],
            body: None,
            context: None,
            raw_query: None,
            base64_body: false,
            source_ip: None,
            cookies: Vec::new(),
        }
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    /// The route template, e.g. `/api/v1/payments/{id}/confirm`.
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn get(route: &str) -> HttpEvent {
        HttpEvent::new("GET", route)
    }

    pub fn post(route: &str) -> HttpEvent {
        HttpEvent::new("POST", route)
    }

    pub fn patch(route: &str) -> HttpEvent {
        HttpEvent::new("PATCH", route)
    }

    pub fn param(mut self, name: &str, value: impl ToString) -> HttpEvent {
        self.path_params.push((name.into(), value.to_string()));
        self
    }

    pub fn query(mut self, name: &str, value: impl ToString) -> HttpEvent {
        self.query.push((name.into(), value.to_string()));
        self
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> HttpEvent {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_lowercase(), value.to_string()));
        self
    }

    pub fn bearer(self, token: &str) -> HttpEvent {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn idempotency_key(self, key: &str) -> HttpEvent {
        self.header("idempotency-key", key)
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> HttpEvent {
        self.raw_body(&body.to_string())
            .header("content-type", "application/json")
    }

    /// A body exactly as given (no content type is added).
    pub fn raw_body(mut self, body: &str) -> HttpEvent {
        self.body = Some(body.to_string());
        self
    }

    /// The query string as received; its decoded pairs become `queryStringParameters`.
    pub fn raw_query(mut self, raw: &str) -> HttpEvent {
        self.query = form_urlencoded::parse(raw.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        self.raw_query = Some(raw.to_string());
        self
    }

    /// A body that is not UTF-8 text, sent base64-encoded as API Gateway does.
    pub fn binary_body(mut self, body: &[u8]) -> HttpEvent {
        use base64::Engine;
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
        self.base64_body = true;
        self
    }

    pub fn source_ip(mut self, ip: &str) -> HttpEvent {
        self.source_ip = Some(ip.to_string());
        self
    }

    /// A `Cookie` header's cookies, which payload 2.0 carries in `cookies`.
    pub fn cookie(mut self, cookie: &str) -> HttpEvent {
        self.cookies.push(cookie.to_string());
        self
    }

    /// Fixes the request id and time (for checked-in example events).
    pub fn context(mut self, request_id: &str, epoch_ms: i64) -> HttpEvent {
        self.context = Some((request_id.to_string(), epoch_ms));
        self
    }

    pub fn path(&self) -> String {
        let mut path = self.route.clone();
        for (k, v) in &self.path_params {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        path
    }

    /// The event JSON.
    pub fn to_json(&self) -> Value {
        let path = self.path();
        let raw_query = self.raw_query.clone().unwrap_or_else(|| {
            self.query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        });
        let mut query_params = serde_json::Map::new();
        for (k, v) in &self.query {
            let merged = match query_params.get(k).and_then(Value::as_str) {
                Some(prev) => format!("{prev},{v}"),
                None => v.clone(),
            };
            query_params.insert(k.clone(), Value::String(merged));
        }
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let route_key = format!("{} {}", self.method, self.route);
        let (request_id, epoch_ms) = self.context.clone().unwrap_or_else(|| {
            (
                uuid::Uuid::new_v4().to_string(),
                chrono::Utc::now().timestamp_millis(),
            )
        });
        let now = chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default();
        let mut event = json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "billwiretest",
                "domainName": "api.billwire.test",
                "domainPrefix": "api",
                "http": {
                    "method": self.method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip.as_deref().unwrap_or("203.0.113.7"),
                    "userAgent": "billwire-tests"
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": "$default",
                "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
                "timeEpoch": epoch_ms
            },
            "isBase64Encoded": self.base64_body
        });
        if !self.cookies.is_empty() {
            event["cookies"] = json!(self.cookies);
        }
        if !query_params.is_empty() {
            event["queryStringParameters"] = Value::Object(query_params);
        }
        if !self.path_params.is_empty() {
            event["pathParameters"] = self
                .path_params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        if let Some(body) = &self.body {
            event["body"] = Value::String(body.clone());
        }
        event
    }

    /// The request exactly as lambda_http builds it from the event.
    pub fn request(&self) -> Result<Request, serde_json::Error> {
        lambda_http::request::from_str(&self.to_json().to_string())
    }
}

/// Builds an API Gateway WebSocket event (`$connect`, `$disconnect` or a message), shaped
/// like `aws_lambda_events`' fixture `example-apigw-websocket-request.json`.
#[derive(Debug, Clone)]
pub struct WsEvent {
    route_key: String,
    event_type: &'static str,
    connection_id: String,
    connected_at: i64,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    disconnect: Option<(i64, String)>,
    /// Request id and time, fixed for reproducible example files.
    context: Option<(String, i64)>,
}

impl WsEvent {
    pub fn route_key(&self) -> &str {
        &self.route_key
    }

    fn new(route_key: &str, event_type: &'static str, connection_id: &str) -> WsEvent {
        WsEvent {
            route_key: route_key.to_string(),
            event_type,
            connection_id: connection_id.to_string(),
            connected_at: chrono::Utc::now().timestamp_millis(),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            disconnect: None,
            context: None,
        }
    }

    /// Fixes the request id and time (for checked-in example events).
    pub fn context(mut self, request_id: &str, epoch_ms: i64) -> WsEvent {
        self.context = Some((request_id.to_string(), epoch_ms));
        self
    }

    /// The `$connect` event for a new connection.
    pub fn connect(connection_id: &str) -> WsEvent {
        WsEvent::new("$connect", "CONNECT", connection_id)
            .header("Host", "ws.billwire.test")
            .header("Sec-WebSocket-Version", "13")
            .header("X-Forwarded-Proto", "https")
    }

    /// A client message, delivered to `route_key` (`$default` or a named route).
    pub fn message(connection_id: &str, route_key: &str, body: &str) -> WsEvent {
        let mut e = WsEvent::new(route_key, "MESSAGE", connection_id);
        e.body = Some(body.to_string());
        e
    }

    /// The `$disconnect` event.
    pub fn disconnect(connection_id: &str, status: i64, reason: &str) -> WsEvent {
        let mut e = WsEvent::new("$disconnect", "DISCONNECT", connection_id);
        e.disconnect = Some((status, reason.to_string()));
        e
    }

    pub fn connected_at(mut self, epoch_ms: i64) -> WsEvent {
        self.connected_at = epoch_ms;
        self
    }

    pub fn query(mut self, name: &str, value: impl ToString) -> WsEvent {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> WsEvent {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn to_json(&self) -> Value {
        let (request_id, epoch_ms) = self.context.clone().unwrap_or_else(|| {
            (
                uuid::Uuid::new_v4().to_string(),
                chrono::Utc::now().timestamp_millis(),
            )
        });
        let now = chrono::DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default();
        let mut context = json!({
            "routeKey": self.route_key,
            "eventType": self.event_type,
            "extendedRequestId": request_id,
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "messageDirection": "IN",
            "stage": "local",
            "connectedAt": self.connected_at,
            "requestTimeEpoch": epoch_ms,
            "identity": { "sourceIp": "127.0.0.1" },
            "requestId": request_id,
            "domainName": "127.0.0.1",
            "connectionId": self.connection_id,
            "apiId": "billwirews"
        });
        if self.event_type == "MESSAGE" {
            context["messageId"] = json!(format!("{request_id}-message"));
        }
        if let Some((code, reason)) = &self.disconnect {
            context["disconnectStatusCode"] = json!(code);
            context["disconnectReason"] = json!(reason);
        }
        let mut event = json!({ "requestContext": context, "isBase64Encoded": false });
        if !self.headers.is_empty() {
            let headers: serde_json::Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let multi: serde_json::Map<String, Value> = self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), json!([v])))
                .collect();
            event["headers"] = Value::Object(headers);
            event["multiValueHeaders"] = Value::Object(multi);
        }
        if !self.query.is_empty() {
            let single: serde_json::Map<String, Value> = self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let multi: serde_json::Map<String, Value> = self
                .query
                .iter()
                .map(|(k, v)| (k.clone(), json!([v])))
                .collect();
            event["queryStringParameters"] = Value::Object(single);
            event["multiValueQueryStringParameters"] = Value::Object(multi);
        }
        if let Some(body) = &self.body {
            event["body"] = json!(body);
        }
        event
    }
}
