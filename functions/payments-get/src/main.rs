//! `GET /api/v1/payments/{id}`: One payment.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
