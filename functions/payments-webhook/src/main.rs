//! `POST /api/v1/payments/webhook`: The payment provider's signed callback.

use shared::{config::Config, lambda, telemetry, App};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env()?;
    // Without its secret this function could verify nothing: refuse to start.
    config.require_webhook_secret()?;
    lambda::run(App::new(config)?, shared::webhooks::handle).await
}
