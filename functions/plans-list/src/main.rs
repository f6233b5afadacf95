//! `GET /api/v1/plans`: The account's plans.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::plans::api::list).await
}
