//! `GET /api/v1/invoices/{id}`: One invoice with its lines.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
