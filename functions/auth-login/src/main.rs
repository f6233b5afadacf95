//! `POST /api/v1/auth/login`: Exchanges email and password for an access token.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
