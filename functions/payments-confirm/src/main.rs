//! `POST /api/v1/payments/{id}/confirm`: Confirms a payment; records `payment_received` or, when declined, `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::payments::api::confirm).await
}
