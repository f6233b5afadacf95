//! WebSocket `$disconnect`: Forgets a closed WebSocket connection.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve_websocket(env!("CARGO_PKG_NAME")).await
}
