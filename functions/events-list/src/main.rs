//! `GET /api/v1/events`: The durable event log, scoped to the caller.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::events::api::list).await
}
