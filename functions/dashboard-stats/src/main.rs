//! `GET /api/v1/dashboard/stats`: The dashboard's figures.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
