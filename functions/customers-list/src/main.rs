//! `GET /api/v1/customers`: The account's customers with order count and total spent (admins).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
