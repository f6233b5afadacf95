//! `POST /api/v1/payments/intent`: Creates a payment intent for a plan; records `order_created`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
