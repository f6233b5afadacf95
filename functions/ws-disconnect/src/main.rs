//! WebSocket `$disconnect`: Forgets a closed WebSocket connection.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_ws(shared::connections::ws::disconnect).await
}
