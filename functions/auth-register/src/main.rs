//! `POST /api/v1/auth/register`: Signs a customer up to an account.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
