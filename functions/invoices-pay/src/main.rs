//! `POST /api/v1/invoices/{id}/pay`: Marks an invoice paid; records `order_updated`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
