//! WebSocket `$connect`: Accepts a WebSocket connection that presents a valid single-use ticket.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve_websocket(env!("CARGO_PKG_NAME")).await
}
