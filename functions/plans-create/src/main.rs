//! `POST /api/v1/plans`: Creates a plan (admins).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve(shared::plans::api::create).await
}
