//! `POST /api/v1/accounts`: Creates a merchant account and its first admin.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
