//! `POST /api/v1/auth/register`: Signs a customer up to an account.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::accounts::api::register).await
}
