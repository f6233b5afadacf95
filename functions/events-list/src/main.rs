//! `GET /api/v1/events`: The durable event log, scoped to the caller.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
