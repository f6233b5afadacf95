//! `POST /api/v1/invoices`: Creates a draft invoice (admins); records `invoice_created`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::invoices::api::create).await
}
