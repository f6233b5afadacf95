//! `GET /api/v1/dashboard/stats`: The dashboard's figures.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::stats::api::dashboard).await
}
