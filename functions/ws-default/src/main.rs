//! WebSocket `$default`: Handles client messages: subscribe and ping.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_ws(shared::connections::ws::message).await
}
