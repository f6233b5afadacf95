//! WebSocket `$default`: Handles client messages: subscribe and ping.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve_websocket(env!("CARGO_PKG_NAME")).await
}
