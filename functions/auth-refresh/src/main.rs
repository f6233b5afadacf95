//! `POST /api/v1/auth/refresh`: Trades a refresh token for a new access and refresh token.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
