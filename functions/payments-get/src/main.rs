//! `GET /api/v1/payments/{id}`: One payment.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::payments::api::get).await
}
