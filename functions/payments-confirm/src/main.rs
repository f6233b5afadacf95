//! `POST /api/v1/payments/{id}/confirm`: Confirms a payment; records `payment_received` or, when declined, `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
