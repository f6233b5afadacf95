//! `GET /api/v1/invoices`: The caller's invoices, newest first.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::invoices::api::list).await
}
