//! `POST /api/v1/invoices/{id}/void`: Voids an invoice; records `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
