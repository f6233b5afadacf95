//! `POST /api/v1/payments/{id}/refund`: Refunds a succeeded payment (admins); records `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
