//! `GET /api/v1/openapi.json`: The OpenAPI 3.1 description of this API.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
