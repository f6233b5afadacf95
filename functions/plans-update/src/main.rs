//! `PATCH /api/v1/plans/{id}`: Changes a plan (admins).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::api::serve(env!("CARGO_PKG_NAME")).await
}
