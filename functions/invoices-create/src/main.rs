//! `POST /api/v1/invoices`: Creates a draft invoice (admins); records `invoice_created`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
