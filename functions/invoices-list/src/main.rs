//! `GET /api/v1/invoices`: The caller's invoices, newest first.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
