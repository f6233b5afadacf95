//! `GET /api/v1/invoices/{id}`: One invoice with its lines.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::invoices::api::get).await
}
