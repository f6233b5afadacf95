//! `POST /api/v1/events/ticket`: a single-use ticket, valid 60 s, to open the event WebSocket.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
