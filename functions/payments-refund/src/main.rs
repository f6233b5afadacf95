//! `POST /api/v1/payments/{id}/refund`: Refunds a succeeded payment (admins); records `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::payments::api::refund).await
}
