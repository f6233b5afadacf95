//! `POST /api/v1/payments/webhook`: The payment provider's signed callback. Refuses to start
//! without `WEBHOOK_SECRET`: it could verify nothing.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
