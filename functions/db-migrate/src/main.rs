//! Applies the migrations in `migrations/` (the same runner tests and local mode use).
//!
//! CloudFormation invokes it on every deploy as the `Custom::Migrations` resource (see
//! template.yaml and docs/deploying.md); it can also be invoked by hand with `{}`, or with
//! `{"demo": true}` to load the demo accounts too. The handler lives in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::platform::telemetry;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    // No configuration is read here: a missing or broken DATABASE_URL must become a FAILED
    // answer to CloudFormation, not a crash at init that leaves the stack waiting.
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            let remaining = deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            db_migrate::handle(event.payload, remaining, |name| std::env::var(name).ok()).await
        },
    ))
    .await
}
