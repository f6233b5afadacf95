//! WebSocket `$connect`: Accepts a WebSocket connection that presents a valid single-use ticket.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_ws(shared::connections::ws::connect).await
}
