//! `POST /api/v1/auth/logout`: Ends a login: its refresh tokens stop working.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
