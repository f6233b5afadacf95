//! `GET /api/v1/payments`: The caller's payments, newest first.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::payments::api::list).await
}
