//! The local gateway: API Gateway's three faces, in front of `cargo lambda watch`.
//!
//! - HTTP API at `/api/...`: each request becomes an API Gateway HTTP API (payload 2.0)
//!   event for the function `template.yaml` routes it to ([`http_api`]).
//! - WebSocket API at `/ws`: `$connect`, `$disconnect` and messages become API Gateway
//!   WebSocket events ([`websocket`]).
//! - Management API at `/@connections/{id}`: POST sends a frame, GET describes, DELETE closes;
//!   unknown ids get `410 GoneException`, so the connector's real
//!   `aws-sdk-apigatewaymanagement` client (and the AWS CLI) work unchanged ([`management`]).
//! - The dashboard's static files at `/`.

pub mod admission;
pub mod http_api;
pub mod invoke;
pub mod management;
pub mod template;
pub mod websocket;

use axum::routing::{any, get};
use axum::Router;
use invoke::Invoker;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use template::Template;
use websocket::Registry;

#[derive(Debug, Clone)]
pub struct Settings {
    pub invoke_url: String,
    /// Functions invoked at an address of their own (see `invoke::Invoker::with_routes`).
    pub invoke_routes: std::collections::HashMap<String, String>,
    pub web_dir: PathBuf,
    /// API Gateway closes connections idle this long (10 minutes).
    pub idle_timeout: Duration,
    /// ...and any connection after this long (2 hours).
    pub max_connection_age: Duration,
    /// API Gateway's limit on one WebSocket message and on a management API post (128 KB).
    pub max_message_bytes: usize,
    /// Messages waiting for a slow client before posts get `429 LimitExceededException`.
    pub outbound_queue: usize,
    pub invoke_timeout: Duration,
    /// Invocations in flight to `cargo lambda watch` at once; more wait their turn here.
    pub invoke_concurrency: usize,
    /// New WebSocket connections admitted per second (API Gateway's default: 500).
    pub connect_rate: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            invoke_url: "http://127.0.0.1:9000".into(),
            invoke_routes: Default::default(),
            web_dir: PathBuf::from("web"),
            idle_timeout: Duration::from_secs(600),
            max_connection_age: Duration::from_secs(7200),
            max_message_bytes: 128 * 1024,
            outbound_queue: 1024,
            invoke_timeout: Duration::from_secs(120),
            invoke_concurrency: 32,
            connect_rate: 500,
        }
    }
}

pub struct Gateway {
    pub template: Template,
    pub invoker: Invoker,
    pub connections: Registry,
    pub connect_rate: admission::ConnectRate,
    pub settings: Settings,
}

pub type State = Arc<Gateway>;

impl Gateway {
    pub fn new(template: Template, settings: Settings) -> State {
        Arc::new(Gateway {
            invoker: Invoker::new(
                &settings.invoke_url,
                settings.invoke_timeout,
                settings.invoke_concurrency,
            )
            .with_routes(settings.invoke_routes.clone()),
            template,
            connections: Registry::default(),
            connect_rate: admission::ConnectRate::new(settings.connect_rate),
            settings,
        })
    }
}

pub fn router(state: State) -> Router {
    let web = tower_http::services::ServeDir::new(&state.settings.web_dir)
        .append_index_html_on_directories(true);
    Router::new()
        .route("/api/{*path}", any(http_api::handle))
        .route("/ws", get(websocket::upgrade))
        .route(
            "/@connections/{id}",
            axum::routing::post(management::post)
                .get(management::describe)
                .delete(management::delete),
        )
        .route("/_gateway/health", get(|| async { "ok" }))
        .fallback_service(web)
        .with_state(state)
}
